import { writeFile } from "node:fs/promises";
import { join } from "node:path";

import nodemailer from "nodemailer";
import type { Logger } from "pino";

import { makePrivateFolder, PRIVATE_FILE_MODE } from "../data-dir.js";
import { composeMail, type MailTransport } from "./transport.js";

/** The folder of DATA_DIR development mail is written to, one .eml file per mail. */
export const MAIL_DIR = "mail";

/**
 * Development without SMTP_URL (never production): each mail is "delivered" by writing it to the
 * log at info, with its text (which holds the link), and as an .eml file (the whole message, as an
 * SMTP server would have received it; any mail client opens it) to DATA_DIR/mail, the folder 0700
 * and the files 0600. The file is named `<created at>-<row id>.eml`, so a listing is in order.
 */
export function developmentTransport(dataDir: string, from: string, logger: Logger): MailTransport {
  const folder = join(dataDir, MAIL_DIR);
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    kind: "development",
    async send(mail, date) {
      const { message } = await composer.sendMail(composeMail(from, mail, date));
      makePrivateFolder(folder);
      const file = join(folder, `${mail.createdAt.toISOString().replace(/[:.]/g, "-")}-${mail.id}.eml`);
      await writeFile(file, message, { mode: PRIVATE_FILE_MODE });
      logger.info(
        { mail: { id: mail.id, to: mail.to, subject: mail.subject, text: mail.text }, file },
        "mail (development, no SMTP_URL): not sent; here and in DATA_DIR/mail instead",
      );
    },
    verify: async () => true,
    close: async () => composer.close(),
  };
}
