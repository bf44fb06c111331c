/**
 * A real gRPC health server for tests: grpc-js serving the gRPC project's own implementation of
 * `grpc.health.v1.Health` (npm `grpc-health-check`), so systemk's hand-written client is checked
 * against an independent one.
 *
 * Run as a program (`deno run --allow-net --allow-env --allow-read --allow-sys grpc_health.ts
 * PORT`), it serves on `0.0.0.0:PORT` until killed: `SERVING` for the whole server (`""`), `NOT_SERVING` after a
 * SIGUSR1, `SERVING` again after a SIGUSR2.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";

/** A running health server. */
export interface GrpcHealthServer {
  port: number;
  /** Sets what the server reports for `service`. */
  setStatus(service: string, status: ServingStatus): void;
  stop(): void;
}

/**
 * Starts a health server.
 *
 * @param statuses What it reports at first, per service (`""`: the whole server).
 * @param address Where it listens (`host:port`; port 0 picks a free one).
 * @return The server.
 */
export function startGrpcHealthServer(
  statuses: Record<string, ServingStatus>,
  address = "127.0.0.1:0",
): Promise<GrpcHealthServer> {
  const server = new grpc.Server();
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) return reject(error);
      resolve({
        port,
        setStatus: (service, status) => health.setStatus(service, status),
        stop: () => server.forceShutdown(),
      });
    });
  });
}

if (import.meta.main) {
  const server = await startGrpcHealthServer({ "": "SERVING" }, `0.0.0.0:${Deno.args[0]}`);
  Deno.addSignalListener("SIGUSR1", () => server.setStatus("", "NOT_SERVING"));
  Deno.addSignalListener("SIGUSR2", () => server.setStatus("", "SERVING"));
  Deno.addSignalListener("SIGTERM", () => {
    server.stop();
    Deno.exit(0);
  });
  console.log(`gRPC health server on port ${server.port}`);
}
