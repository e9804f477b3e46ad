// `npx vite examples/web` serves the app on http://localhost:5173; `npx vite build examples/web`
// writes it to examples/web/dist/. VITE_API_URL (default http://localhost:4000/graphql) is the API.
// Plain JavaScript, so that `--configLoader native` can import it as it is (the browser test does:
// nothing is written under node_modules/.vite-temp).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  // Vite's cache under this folder, not the repository's node_modules/.vite.
  cacheDir: "node_modules/.vite",
});
