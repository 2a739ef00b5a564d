/**
 * Progress of a long CLI job (user imports ...): a bar redrawn in place on a terminal, a
 * plain line every tenth of the way otherwise (logs, pipes). `progressLine` is pure.
 */
export function progressLine(done: number, total: number, elapsedMs: number, what: string, width = 30): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * width);
  const perSecond = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const left = perSecond > 0 ? Math.ceil((total - done) / perSecond) : undefined;
  const eta = done >= total ? 'done' : left === undefined ? 'eta ?' : `eta ${left}s`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${what} ${Math.floor(fraction * 100)}% ${Math.round(perSecond)}/s ${eta}`;
}

export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastTenth = 0;

  constructor(
    private readonly total: number,
    private readonly what: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number): void {
    const now = Date.now();
    if (this.out.isTTY) {
      // redraw at most ten times a second, and always at the end
      if (done < this.total && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(
        `\r${progressLine(done, this.total, now - this.started, this.what)}${done >= this.total ? '\n' : ''}`,
      );
      return;
    }
    const tenth = this.total > 0 ? Math.floor((done / this.total) * 10) : 10;
    if (tenth > this.lastTenth && this.total >= 100) {
      this.lastTenth = tenth;
      this.out.write(`  ${progressLine(done, this.total, now - this.started, this.what)}\n`);
    }
  }
}
