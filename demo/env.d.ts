// import.meta.env (DEV) and the other types Vite adds to the demo's modules.
/// <reference types="vite/client" />
