/**
 * One connection to a D-Bus bus, as both of systemk's D-Bus clients (systemd's manager,
 * logind) open it: connected, with its messages and its loss reported; and one method call on
 * it.
 *
 * @module
 */
import dbus from "dbus-next";
import type { Message, MessageBus } from "dbus-next";

/** What {@link connectBus} reports. */
export interface BusHandlers {
  /** Every message the bus delivers (replies are matched by dbus-next itself). */
  onMessage(bus: MessageBus, message: Message): void;
  /** The connection failed or its socket closed. */
  onLost(bus: MessageBus): void;
}

/**
 * Connects to the bus at `busAddress` (default: the machine's system bus).
 *
 * @throws the connection's error; nothing stays open then.
 */
export async function connectBus(
  busAddress: string | undefined,
  handlers: BusHandlers,
): Promise<MessageBus> {
  const bus = busAddress === undefined ? dbus.systemBus() : dbus.sessionBus({ busAddress });
  try {
    await new Promise<void>((resolve, reject) => {
      bus.once("connect", resolve);
      bus.once("error", reject);
    });
  } catch (e) {
    bus.disconnect();
    throw e;
  }
  bus.on("message", (msg: Message) => handlers.onMessage(bus, msg));
  bus.on("error", () => handlers.onLost(bus));
  // dbus-next reports a closed socket only on its (undocumented) connection object.
  (bus as unknown as { _connection: { on(e: string, f: () => void): void } })._connection
    .on("end", () => handlers.onLost(bus));
  return bus;
}

/** A method call: whom, which object, interface and member, with what arguments. */
export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  /** The arguments' D-Bus signature; default: none. */
  signature?: string;
  body?: unknown[];
}

/**
 * Calls a method on `bus`.
 *
 * @throws the method's D-Bus error, or an error when no reply came.
 */
export async function callMethod(bus: MessageBus, call: MethodCall): Promise<Message> {
  const reply = await bus.call(new dbus.Message({ signature: "", body: [], ...call }));
  if (!reply) throw new Error(`no reply to ${call.member}`);
  return reply;
}
