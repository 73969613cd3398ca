import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The management listener serves the built console at /ui/. In development, `npm run dev`
// serves it here and sends the API calls to a running gateway's management listener:
// TOLLGATE_MANAGEMENT=http://127.0.0.1:9090 npm run dev
const management = process.env.TOLLGATE_MANAGEMENT ?? 'http://127.0.0.1:9090';

export default defineConfig({
  base: '/ui/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    // Everything in files of its own: the CSP the gateway sends allows no inline script or style.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/api': { target: management, changeOrigin: true },
    },
  },
});
