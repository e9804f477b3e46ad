import type { MailMessage } from "../mailer.js";

// Every mail this service sends, in plain text and HTML. Short, and holding nothing a client could
// not already see (no IP address, no device): what happened, the link if any, and what to do when
// it was not you. Everything interpolated into the HTML is escaped.

/** `template` (PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL) with `{token}` replaced, URL-encoded. */
export function linkWith(template: string, token: string): string {
  return template.replace("{token}", encodeURIComponent(token));
}

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** How long a link lives, in words ("30 minutes", "24 hours"). */
export function lifetimeInWords(seconds: number): string {
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

interface Mail {
  subject: string;
  /** Paragraphs of plain text; `link` goes between the first and the rest. */
  paragraphs: string[];
  link?: { url: string; label: string };
}

function render(to: string, mail: Mail): MailMessage {
  const [first, ...rest] = mail.paragraphs;
  const text = [first, ...(mail.link ? [mail.link.url] : []), ...rest].join("\n\n") + "\n";
  const htmlParts = [
    `<p>${escapeHtml(first ?? "")}</p>`,
    ...(mail.link
      ? [
          `<p><a href="${escapeHtml(mail.link.url)}">${escapeHtml(mail.link.label)}</a></p>`,
          `<p>Or copy this address into your browser:<br>${escapeHtml(mail.link.url)}</p>`,
        ]
      : []),
    ...rest.map((paragraph) => `<p>${escapeHtml(paragraph)}</p>`),
  ];
  const html =
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(mail.subject)}</title></head>` +
    `<body>${htmlParts.join("")}</body></html>`;
  return { to, subject: mail.subject, text, html };
}

/** The reset link, sent to a verified address (and its stand-in, suppressed, for any other). */
export function resetPasswordMail(to: string, username: string, url: string, ttlSeconds: number): MailMessage {
  return render(to, {
    subject: "Reset your password",
    paragraphs: [
      `Someone asked to reset the password of the account ${username}. To choose a new password, open this link:`,
      `The link works once, for ${lifetimeInWords(ttlSeconds)}. Resetting the password signs the account out everywhere.`,
      "If you did not ask for this, ignore this mail: your password stays as it is.",
    ],
    link: { url, label: "Choose a new password" },
  });
}

/** The verification link of a new or changed address. */
export function verifyEmailMail(to: string, username: string, url: string, ttlSeconds: number): MailMessage {
  return render(to, {
    subject: "Verify your e-mail address",
    paragraphs: [
      `To use this address with the account ${username}, open this link:`,
      `The link works once, for ${lifetimeInWords(ttlSeconds)}.`,
      "If you did not ask for this, ignore this mail: the address is not used until it is verified.",
    ],
    link: { url, label: "Verify this address" },
  });
}

/** The notice after a reset. */
export function passwordChangedMail(to: string, username: string): MailMessage {
  return render(to, {
    subject: "Your password was changed",
    paragraphs: [
      `The password of the account ${username} was just reset, and the account was signed out everywhere else.`,
      "If this was not you, reset your password again at once and tell an administrator.",
    ],
  });
}

/** The notice to the old address when changeEmail asks for a new one. */
export function emailChangingMail(to: string, username: string): MailMessage {
  return render(to, {
    subject: "Your e-mail address is changing",
    paragraphs: [
      `Someone signed in to the account ${username} asked to use another e-mail address. ` +
        "It replaces this one once it is verified.",
      "If this was not you, reset your password at once and tell an administrator.",
    ],
  });
}
