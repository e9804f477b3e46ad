import "reflect-metadata";

import { Args, Query, Resolver } from "type-graphql";

import { Requires } from "../access/requires.js";
import { Role } from "../access/roles.js";
import { Scope } from "../access/scopes.js";
import { AuditEventsArgs } from "./audit.input.js";
import type { AuditService } from "./audit.service.js";
import { AuditEvent } from "./audit.type.js";

@Resolver(() => AuditEvent)
export class AuditResolver {
  constructor(private readonly audit: AuditService) {}

  @Query(() => [AuditEvent], {
    description: "Security events, newest first, optionally of one type or concerning one user.",
  })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  auditEvents(@Args() args: AuditEventsArgs): Promise<AuditEvent[]> {
    return this.audit.list(args);
  }
}
