import { expect, type Page } from "@playwright/test";

/** Fails the test on any console error or uncaught exception (CSP violations, hydration panics). */
export function failOnConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

/** Waits until the wasm has loaded and taken over the server-rendered page. */
export async function waitForHydration(page: Page) {
  await expect(page.locator("main[data-hydrated=true]")).toHaveCount(1);
}

/** A unique e-mail address for this run. */
export function uniqueEmail(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
}

/** Signs in with the form on /login and waits for the home page. */
export async function signIn(page: Page, email: string, password: string) {
  await page.goto("/login");
  await waitForHydration(page);
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("welcome")).toBeVisible();
}

/**
 * What runs out of the screen: the page's own `scrollWidth` against its width, and every visible element
 * whose box crosses an edge without a scrolling (or clipping) container around it.
 */
export async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const found: string[] = [];
    if (document.documentElement.scrollWidth > width) {
      found.push(`the page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
    }
    for (const element of Array.from(document.body.querySelectorAll("*"))) {
      const box = element.getBoundingClientRect();
      if (box.width <= 1 || box.height <= 1) continue;
      if (box.right <= width + 1 && box.left >= -1) continue;
      let contained = false;
      for (let parent = element.parentElement; parent && parent !== document.body; parent = parent.parentElement) {
        if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(parent).overflowX)) {
          contained = true;
          break;
        }
      }
      if (!contained) {
        const name = element.tagName.toLowerCase() + (element.id ? `#${element.id}` : "") +
          (element.className && typeof element.className === "string" ? `.${element.className.split(" ").join(".")}` : "");
        found.push(`${name} spans ${Math.round(box.left)}..${Math.round(box.right)}px`);
      }
    }
    return found;
  });
}

/** Controls a finger must hit that are less than 44 px tall (links inside text are exempt). */
export async function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const selector = "button, .button, select, summary, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), header a, nav a";
    const found: string[] = [];
    for (const element of Array.from(document.querySelectorAll(selector))) {
      const box = element.getBoundingClientRect();
      if (box.width <= 1 || box.height <= 1) continue;
      if (box.height < 43.5) {
        found.push(`${element.tagName.toLowerCase()} "${(element.textContent ?? "").trim().slice(0, 40)}" is ${box.height.toFixed(1)}px tall`);
      }
    }
    return found;
  });
}
