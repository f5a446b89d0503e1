/** The sync socket as a message channel (newline-delimited JSON), used on both sides. */
import { Socket } from 'node:net';
import { LineReader } from './messages.ts';

export class Channel<In, Out> {
  private reader = new LineReader<In>();
  closed = false;

  constructor(private socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        this.reader.push(chunk);
      } catch {
        this.reader.close();
      }
    });
    const close = () => {
      this.closed = true;
      this.reader.close();
    };
    socket.on('end', close);
    socket.on('close', close);
    // The other side going away (a detached create exits) is an ordinary end.
    socket.on('error', close);
  }

  static fromFd<In, Out>(fd: number): Channel<In, Out> {
    return new Channel<In, Out>(new Socket({ fd, readable: true, writable: true }));
  }

  next(): Promise<In | undefined> {
    return this.reader.next();
  }

  send(msg: Out): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.socket.destroyed) return resolve();
      this.socket.write(JSON.stringify(msg) + '\n', () => resolve());
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  unref(): void {
    this.socket.unref();
  }
}
