import { expect, type Page } from "@playwright/test";
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

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

/** Undoes quoted-printable (soft line breaks and `=XX` bytes), as mail bodies arrive. */
function unquote(text: string): string {
  return text
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The newest link to `path` in mail the server wrote for `to` (the test server has no SMTP settings, so
 * it writes `.eml` files into `PAWFILE_E2E_MAIL_DIR`). Waits up to 10 seconds for it.
 */
export async function mailedLink(to: string, path: string): Promise<string> {
  const folder = process.env.PAWFILE_E2E_MAIL_DIR;
  if (!folder) throw new Error("PAWFILE_E2E_MAIL_DIR is not set: run the browser tests through scripts/test");
  const pattern = new RegExp(`https?://[^\\s"<>]+${path.replace(/[/]/g, "\\/")}\\?token=[A-Za-z0-9_-]+`);
  for (let tries = 0; tries < 100; tries++) {
    let files: string[] = [];
    try {
      files = readdirSync(folder).filter((name) => name.endsWith(".eml"));
    } catch {
      // Not created until the first mail.
    }
    const newestFirst = files
      .map((name) => join(folder, name))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    for (const file of newestFirst) {
      const text = unquote(readFileSync(file, "utf8"));
      if (!new RegExp(`^To: .*${to.replace(/[.+]/g, "\\$&")}`, "mi").test(text)) continue;
      const link = text.match(pattern);
      if (link) return link[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no mail to ${to} with a link to ${path} in ${folder}`);
}

/** Signs up as an owner on /register, follows the mailed link and confirms: signed in on the home page. */
export async function signUp(page: Page, name: string, email: string, password: string) {
  await page.goto("/register");
  await waitForHydration(page);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("E-mail address").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("sent")).toContainText("Check your e-mail");
  await page.goto(await mailedLink(email.toLowerCase(), "/verify-email"));
  await waitForHydration(page);
  await page.getByLabel("Your password").fill(password);
  await page.getByRole("button", { name: "Confirm and sign in" }).click();
  await expect(page.getByTestId("welcome")).toHaveText(`Welcome, ${name}`);
}

/** The demo accounts that sign in with a second factor, and their TOTP keys (as in the README). */
const DEMO_TOTP: Record<string, string> = {
  "vet@pawfile.test": "PAWFILEDEMOVETAAAAAAAAAAAAAAAAAA",
  "admin@pawfile.test": "PAWFILEDEMOADMINAAAAAAAAAAAAAAAA",
};

function base32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of text.replace(/=+$/, "")) bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of `secret` for time step `step`. */
export function totpCode(secret: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

/** The newest step whose code each demo account used in this run: the server takes each code once. */
const lastStep = new Map<string, number>();

/**
 * Signs in with the form on /login and waits for the home page. For the demo vet and admin it enters a
 * code too: one of the steps the server accepts now (the one before, this one, the next), never one used
 * before; if all three are spent it waits for the next step.
 */
export async function signIn(page: Page, email: string, password: string) {
  const secret = DEMO_TOTP[email];
  for (let attempt = 0; ; attempt++) {
    await page.goto("/login");
    await waitForHydration(page);
    await page.getByLabel("E-mail address").fill(email);
    await page.locator("#password").fill(password);
    if (secret) {
      const now = Math.floor(Date.now() / 30_000);
      let step = Math.max(now - 1, (lastStep.get(email) ?? -Infinity) + 1);
      if (step > now + 1) {
        await page.waitForTimeout((step - 1) * 30_000 - Date.now() + 500);
        step = Math.floor(Date.now() / 30_000) + 1;
      }
      lastStep.set(email, step);
      await page.locator("#code").fill(totpCode(secret, step));
    }
    await page.getByRole("button", { name: "Sign in" }).click();
    const welcome = page.getByTestId("welcome");
    const refused = page.locator("#code-error");
    await expect(welcome.or(refused)).toBeVisible();
    if (await welcome.isVisible()) return;
    if (!secret || attempt >= 3) throw new Error(`${email} could not sign in: ${await refused.textContent()}`);
  }
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
