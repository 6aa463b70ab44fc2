import net from 'node:net';

/** A loopback TCP relay to the API server whose connections the test can cut (TLS passes through). */
export class Relay {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly upstream: URL) {
    this.server = this.make();
  }
  private make(): net.Server {
    return net.createServer((client) => {
      const up = net.connect(Number(this.upstream.port), this.upstream.hostname);
      for (const s of [client, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(up).pipe(client);
    });
  }
  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Refuses new connections and resets the open ones. */
  async cut(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.resetAndDestroy();
    });
  }
  async restore(): Promise<void> {
    this.server = this.make();
    await this.listen(this.port);
  }
}
