/** Command-line entry: parses flags and dispatches to a mode. */
export async function run(_args: string[]): Promise<number> {
  return await Promise.resolve(0);
}
