// The multi-factor settings group of config.ts (config-groups.ts holds the others; this one has a
// file of its own to keep both within the size budget).
import { z } from "zod";

import { countOrOff, list, matching, variable } from "./env-schema.js";

/** The roles MFA_REQUIRED_ROLES may name (access/roles.ts's Role, which this bottom layer does not import). */
const ROLE_NAMES = ["USER", "ADMIN"];

/**
 * MFA_REQUIRED_ROLES, MFA_ENCRYPTION_KEYS, WEBAUTHN_*, PASSKEY_CHALLENGES_MAX_PER_IP: who must use a second
 * factor, the keys TOTP secrets are encrypted with, the passkeys' relying party and sign-in budget. WebAuthn
 * defaults derive from PUBLIC_URL in config.ts's transform; an unset MFA_ENCRYPTION_KEYS is generated in DATA_DIR.
 */
export const mfaSettings = (origin: (value: string) => string | undefined) =>
  z.object({
    requiredRoles: variable(
      "MFA_REQUIRED_ROLES",
      list((role) =>
        ROLE_NAMES.includes(role) ? undefined : `has "${role}", which is not a role (${ROLE_NAMES.join(", ")})`,
      ),
      "roles whose fields need assurance AAL2",
    ),
    encryptionKeys: variable(
      "MFA_ENCRYPTION_KEYS",
      list((key) =>
        /^[A-Za-z0-9+/_-]{43}=?$/.test(key) && Buffer.from(key, "base64").length === 32
          ? undefined
          : "has a key that is not 32 bytes in base64 (generate one with `openssl rand -base64 32`)",
      ),
      "keys TOTP secrets are encrypted with, newest first; unset: generated in DATA_DIR",
    ),
    rpId: variable(
      "WEBAUTHN_RP_ID",
      matching(/^[a-z0-9.-]+$/i, "must be a host name (no scheme, port or path)"),
      "the passkeys' relying party id",
    ),
    origins: variable("WEBAUTHN_ORIGINS", list(origin), "origins passkeys may be used from"),
    challengesPerIpPerHour: variable(
      "PASSKEY_CHALLENGES_MAX_PER_IP",
      countOrOff(60),
      "passkey sign-ins per IP per hour",
    ),
  });
