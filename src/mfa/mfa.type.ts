import "reflect-metadata";

import { Field, ObjectType } from "type-graphql";

import { Bounded } from "../graphql/query-cost.js";
import { OTPAUTH_URI_MAX_LENGTH, TOTP_SECRET_TEXT_LENGTH } from "./totp.js";

@ObjectType("TotpEnrollment", {
  description:
    "A TOTP secret waiting for confirmTotp: show `otpauthUri` as a QR code (or `secret` for typing in). It is no " +
    "second factor until confirmed.",
})
export class TotpEnrollment {
  @Field({ description: "The secret, base32 (RFC 4648, no padding): 160 bits." })
  @Bounded(TOTP_SECRET_TEXT_LENGTH)
  secret!: string;

  @Field({ description: "otpauth://totp/... with the issuer (JWT_ISSUER) and username: SHA1, 6 digits, 30 s." })
  @Bounded(OTPAUTH_URI_MAX_LENGTH)
  otpauthUri!: string;
}
