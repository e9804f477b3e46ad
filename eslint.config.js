// ESLint flat config: eslint's recommended rules, typescript-eslint's type-aware rules for
// src/, test/ and the example web app's .ts modules (promises that nobody awaits or that land where a
// callback was expected are the bugs a server like this one cannot afford), the size budget of src/
// (300 lines a file, 60 a function), and plain recommended rules for the scripts.
import js from "@eslint/js";
import simpleImportSort from "eslint-plugin-simple-import-sort";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "data/",
      "node_modules/",
      "bench/results/",
      ".build-*/",
      "examples/web/dist/",
      "examples/web/src/gql/",
      "test/clients/recipes/gql/",
    ],
  },
  js.configs.recommended,
  {
    // Imports in one order everywhere, fixed by `npm run format`: side effects (reflect-metadata)
    // first, then node: built-ins, packages, and the project's own modules, each group sorted.
    // The client recipes are left as their libraries' documentation writes them: docs/ quotes them whole.
    ignores: ["test/clients/recipes/**"],
    plugins: { "simple-import-sort": simpleImportSort },
    rules: { "simple-import-sort/imports": "error", "simple-import-sort/exports": "error" },
  },
  {
    files: ["**/*.{js,mjs}"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ["**/*.{ts,tsx}"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      // node:test's describe/it return promises that the runner itself tracks.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["describe", "it", "test", "suite", "before", "after", "beforeEach", "afterEach"],
            },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      // Apollo Server's plugin hooks are typed to return promises; many of ours have nothing to await.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/no-unnecessary-type-assertion": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
    },
  },
  {
    // The size budget (scripts/sizes.mjs prints the same counts): every line counts, blank and
    // comment lines included, and a function from its first line (decorators included) to its last.
    files: ["src/**/*.ts"],
    rules: {
      "max-lines": ["error", { max: 300, skipBlankLines: false, skipComments: false }],
      "max-lines-per-function": ["error", { max: 60, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
  {
    // The schema's history: each migration is written once, never edited, and reads best whole.
    files: ["src/db/migrations.ts"],
    rules: { "max-lines-per-function": "off" },
  },
  {
    // Tests read untyped JSON responses on purpose: `any` there is the response, not a shortcut.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    // The example web app runs in a browser; its .ts and .tsx get the type-aware rules above through
    // its own tsconfig.json (React 18's types from @types/react).
    files: ["examples/web/**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
  },
);
