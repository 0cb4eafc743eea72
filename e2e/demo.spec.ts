// The placeholder demo, served by Vite with demo/vite.config.ts as `npm run demo` does.
import { expect, test } from '@playwright/test'

test('the demo publishes a burst and shows the counts live', async ({ page }) => {
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(String(error)))
  await page.goto('/')
  await expect(page).toHaveTitle('crossbus demo')
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true')
  await expect(page.locator('#published')).toHaveText('0')

  await page.locator('#count').fill('5000')
  await page.locator('#burst').click()
  await expect(page.locator('#published')).toHaveText('5000')
  await expect(page.locator('#delivered')).toHaveText('5000')
  await expect(page.locator('#dropped')).toHaveText('0')

  // A stalled consumer (capacity 100): the burst is published in one task, so 100 fit
  // its queue and the rest drop; then it takes one event and never finishes it.
  await page.locator('#stalled').check()
  await page.locator('#burst').click()
  await expect(page.locator('#published')).toHaveText('10000')
  await expect(page.locator('#delivered')).toHaveText('10000')
  await expect(page.locator('#dropped')).toHaveText(String(5000 - 100))

  expect(errors).toEqual([])
})
