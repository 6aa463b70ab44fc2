/** A real HTTP receiver on 127.0.0.1 (random port) for delivery tests; records every request. */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The exact raw body. */
  body: string;
}

export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** Answers a request; returning undefined leaves it hanging (its response is kept in `hanging`). */
export type Responder = (req: ReceivedRequest) => Answer | undefined | Promise<Answer | undefined>;

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  respond: Responder;
  hanging: ServerResponse[];
  close(): Promise<void>;
}

export async function startReceiver(respond: Responder = () => ({ status: 200 })): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    requests: [],
    respond,
    hanging: [],
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      receiver.requests.push(received);
      void Promise.resolve(receiver.respond(received)).then((answer) => {
        if (!answer) return void receiver.hanging.push(res);
        res.writeHead(answer.status, answer.headers).end(answer.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}
