import http from 'node:http';

export type Sample = {name: string; labels: Record<string, string>; value: number};

/** Parses the text exposition format (samples only; HELP/TYPE lines are checked by promtool). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split(`\n`)) {
    if (line === `` || line.startsWith(`#`)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`Not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? ``).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, c: string) => (c === `n` ? `\n` : c));
    samples.push({name: match[1]!, labels, value: Number(match[3])});
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function sumOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) sum += sample.value;
  }
  return sum;
}

/** GET http://host:port/metrics → status, content type and body. */
export function scrape(port: number, host = `127.0.0.1`, path = `/metrics`): Promise<{status: number; contentType: string; body: string}> {
  return new Promise((resolve, reject) => {
    http.get({host, port, path, agent: false}, (response) => {
      let body = ``;
      response.setEncoding(`utf8`);
      response.on(`data`, (chunk: string) => (body += chunk));
      response.on(`end`, () => resolve({status: response.statusCode ?? 0, contentType: String(response.headers[`content-type`]), body}));
    }).on(`error`, reject);
  });
}
