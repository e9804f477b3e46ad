// The audit log's face. The log itself (AuditService) is part of the core, built by buildAuditLog,
// since every feature records into it; the feature adds the auditEvents query.
import type { Basics } from "../feature.js";
import { defineFeature } from "../feature.js";
import { AuditResolver } from "./audit.resolver.js";
import { AuditService } from "./audit.service.js";
import { AuditStore } from "./audit.store.js";

export { auditDetail, type AuditEventInput, AuditService } from "./audit.service.js";
export { AuditEvent, AuditEventType } from "./audit.type.js";

/**
 * The app's audit log on its database: pruned by the housekeeping (AUDIT_RETENTION), and stopped by
 * the closer, which writes the coalesced counts still in memory before the database closes.
 */
export function buildAuditLog({ config, database, now, logger, closer, housekeeping }: Basics): AuditService {
  const audit = new AuditService({
    store: new AuditStore(database.db),
    retentionSeconds: config.audit.retentionSeconds,
    now,
    logger,
  });
  closer.add("the audit log", () => audit.stop());
  housekeeping.add(() => audit.prune());
  return audit;
}

export const auditFeature = defineFeature({
  name: "audit",
  resolvers: [AuditResolver],
  build: async ({ audit }: { audit: AuditService }) => ({ services: {}, resolvers: [new AuditResolver(audit)] }),
});
