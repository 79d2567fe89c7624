// HTTP/2 PING keepalive for one session (client or server): a PING every intervalMs while
// none is outstanding; a PING unanswered for timeoutMs means the peer is gone, and onDead runs
// once (the owner destroys the session). One timer per session, nothing per frame.
import type { Http2Session } from 'node:http2';
import type { Clock, TimerHandle } from '../core/clock.js';

export class SessionKeepalive {
  private timer: TimerHandle | undefined;
  private outstandingSince: number | undefined;
  private stopped = false;
  private readonly onAck = (err: Error | null): void => {
    if (!err) this.outstandingSince = undefined;
  };

  constructor(
    private readonly session: Http2Session,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly onDead: (silentMs: number) => void,
  ) {}

  start(): void {
    if (this.intervalMs > 0 && !this.stopped) this.arm(this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    this.timer = this.clock.setTimeout(() => this.tick(), delayMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped || this.session.destroyed) return;
    const now = this.clock.now();
    if (this.outstandingSince !== undefined) {
      const silentMs = now - this.outstandingSince;
      if (silentMs >= this.timeoutMs) {
        this.stop();
        this.onDead(silentMs);
        return;
      }
      this.arm(Math.min(this.intervalMs, this.timeoutMs - silentMs));
      return;
    }
    try {
      if (this.session.ping(this.onAck)) this.outstandingSince = now;
    } catch {
      // The session is closing; its own close handling takes over.
      return;
    }
    this.arm(Math.min(this.intervalMs, this.timeoutMs));
  }
}
