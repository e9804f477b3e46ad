// What every peer shares: where to listen, the JWT settings, and the one in-memory user that
// `me` returns. run.mjs passes the secret and port in the environment; the token it sends is
// HS256 with this issuer and audience, so each peer verifies algorithm, signature, issuer,
// audience and expiry, as this project does.
export const ISSUER = "bench-issuer";
export const AUDIENCE = "bench-audience";
export const USER = { id: "7f1c1d52-2b1e-4c54-9a1e-0c2f5d1f1a01", username: "bench-user" };

/** The port from argv[2], else PORT, else 0 (any free port). */
export function listenPort() {
  return Number(process.argv[2] ?? process.env.PORT ?? 0);
}

export function jwtSecret() {
  const secret = process.env.BENCH_JWT_SECRET;
  if (!secret) {
    process.stderr.write("BENCH_JWT_SECRET is not set\n");
    process.exit(1);
  }
  return secret;
}

/** run.mjs waits for this line on stdout. */
export function announceReady(port) {
  process.stdout.write(`ready ${port}\n`);
}

export const HOST = "127.0.0.1";
