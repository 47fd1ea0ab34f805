/** The Content-Type of the Prometheus text exposition format this writer produces. */
export const PROMETHEUS_CONTENT_TYPE = `text/plain; version=0.0.4; charset=utf-8`;

export type Labels = Readonly<Record<string, string>>;

/**
 * Writes the Prometheus text exposition format 0.0.4: each metric family once (HELP, TYPE, then
 * all of its samples together), label values escaped (backslash, double quote, line feed).
 */
export class PrometheusText {
  readonly #lines: string[] = [];

  /** Starts a family: every sample of it must follow before the next family starts. */
  family(name: string, type: `counter` | `gauge` | `histogram`, help: string): this {
    this.#lines.push(`# HELP ${name} ${help.replaceAll(`\\`, `\\\\`).replaceAll(`\n`, `\\n`)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels | null, value: number): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** The samples of one histogram series from non-cumulative bucket counts (the last one is +Inf). */
  histogram(name: string, labels: Labels, bounds: readonly number[], buckets: ArrayLike<number>, sum: number): this {
    let cumulative = 0;
    for (let index = 0; index < bounds.length; index++) {
      cumulative += buckets[index]!;
      this.sample(`${name}_bucket`, {...labels, le: String(bounds[index])}, cumulative);
    }
    cumulative += buckets[bounds.length]!;
    this.sample(`${name}_bucket`, {...labels, le: `+Inf`}, cumulative);
    this.sample(`${name}_sum`, labels, sum);
    this.sample(`${name}_count`, labels, cumulative);
    return this;
  }

  toString(): string {
    return this.#lines.length === 0 ? `` : `${this.#lines.join(`\n`)}\n`;
  }
}

function formatLabels(labels: Labels | null): string {
  if (labels === null) return ``;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    parts.push(`${key}="${value.replaceAll(`\\`, `\\\\`).replaceAll(`"`, `\\"`).replaceAll(`\n`, `\\n`)}"`);
  }
  return parts.length === 0 ? `` : `{${parts.join(`,`)}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return `NaN`;
  if (value === Infinity) return `+Inf`;
  if (value === -Infinity) return `-Inf`;
  return String(value);
}
