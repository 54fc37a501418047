// An undo stack for a sequence of steps (the job Go's `defer` does in the
// reference plugins' cmdAdd): each step registers how to undo itself the
// moment its resource exists; on failure the stack is unwound newest first,
// every undo attempted even when an earlier one fails.
export interface UndoStep {
  name: string;
  run: () => void | Promise<void>;
}

export class UndoStack {
  private readonly steps: UndoStep[] = [];

  push(name: string, run: () => void | Promise<void>): void {
    this.steps.push({ name, run });
  }

  /** Success: nothing to undo any more. */
  commit(): void {
    this.steps.length = 0;
  }

  /** Undo everything, newest first; returns the failures (the caller's error is what the runtime sees). */
  async unwind(): Promise<{ name: string; error: unknown }[]> {
    const failures: { name: string; error: unknown }[] = [];
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.run();
      } catch (error) {
        failures.push({ name: s.name, error });
      }
    }
    return failures;
  }
}
