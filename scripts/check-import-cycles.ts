// `npm run lint` step: fails when the relative imports of src/ (type-only imports included) form a
// circle, and prints each circle as a chain of files. Module boundaries: docs/architecture.md.
import fs from 'node:fs';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, `..`);
const root = path.join(repo, process.argv[2] ?? `src`);
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/gm;

const files = fs.readdirSync(root, {recursive: true, withFileTypes: true})
  .filter((entry) => entry.isFile() && entry.name.endsWith(`.ts`))
  .map((entry) => path.join(entry.parentPath, entry.name));
const graph = new Map<string, string[]>();
for (const file of files) {
  const text = fs.readFileSync(file, `utf8`);
  const targets = new Set<string>();
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? match[3];
    if (specifier !== undefined) targets.add(path.resolve(path.dirname(file), specifier));
  }
  graph.set(file, [...targets].filter((target) => graph.has(target) || files.includes(target)));
}

// Tarjan's strongly connected components: every component with more than one file is a circle.
let counter = 0;
const index = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const circles: string[][] = [];
function visit(file: string): void {
  index.set(file, counter);
  low.set(file, counter);
  counter += 1;
  stack.push(file);
  onStack.add(file);
  for (const target of graph.get(file) ?? []) {
    if (!index.has(target)) {
      visit(target);
      low.set(file, Math.min(low.get(file)!, low.get(target)!));
    } else if (onStack.has(target)) {
      low.set(file, Math.min(low.get(file)!, index.get(target)!));
    }
  }
  if (low.get(file) !== index.get(file)) return;
  const component: string[] = [];
  let member: string | undefined;
  do {
    member = stack.pop()!;
    onStack.delete(member);
    component.push(member);
  } while (member !== file);
  const selfImport = (graph.get(file) ?? []).includes(file);
  if (component.length > 1 || selfImport) circles.push(component.reverse());
}
for (const file of [...graph.keys()].sort()) if (!index.has(file)) visit(file);

if (circles.length > 0) {
  console.error(`Circular imports in ${path.relative(repo, root)}/ (${circles.length}):`);
  for (const circle of circles) console.error(`  ${circle.map((file) => path.relative(repo, file)).join(` ↔ `)}`);
  process.exit(1);
}
console.log(`No circular imports among ${files.length} files in ${path.relative(repo, root)}/`);
