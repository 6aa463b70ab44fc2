/** One HTTPS request with a custom CA (and optionally a client certificate), keeping the headers. */
import https from 'node:https';

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export interface HttpsCallOptions {
  method?: string;
  body?: unknown;
  contentType?: string;
  ca: string;
  cert?: string;
  key?: string;
  agent?: https.Agent;
}

export function httpsCall(url: string, options: HttpsCallOptions): Promise<HttpsAnswer> {
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        ca: options.ca,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        ...(options.agent ? { agent: options.agent } : {}),
        timeout: 20_000,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.end(body);
  });
}
