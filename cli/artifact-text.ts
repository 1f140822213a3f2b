// An artifact as a person reads it in a terminal: the built-in kinds laid out, anything else as
// indented JSON.
type Json = Record<string, unknown>;
const list = (items: unknown, each: (item: never) => string): string[] =>
  Array.isArray(items) && items.length ? items.map((item, i) => `  ${i + 1}. ${each(item as never)}`) : ['  (none)'];

export function artifactText(schemaId: string, content: unknown): string {
  if (!content || typeof content !== 'object') return '(the file is not JSON)';
  const a = content as Json;
  if (schemaId.startsWith('dev/spec@')) {
    return [
      String(a.title), '', String(a.summary), '',
      'Requirements:', ...list(a.requirements, (r: Json) => `${r.id} ${r.text}`),
      'Acceptance criteria:', ...list(a.acceptanceCriteria, (t: string) => t),
      'Out of scope:', ...list(a.outOfScope, (t: string) => t),
      'Open questions:', ...list(a.openQuestions, (t: string) => t),
    ].join('\n');
  }
  if (schemaId.startsWith('dev/implementation@')) {
    return [
      String(a.summary), '',
      'Files changed:', ...list(a.filesChanged, (f: Json) => `${f.path} (${f.change})`),
      'Commits:', ...list(a.commits, (c: string) => c),
      'Tests run:', ...list(a.testsRun, (t: Json) => `${t.command}: ${t.passed ? 'passed' : 'FAILED'}`),
      ...(a.notes ? ['Notes:', `  ${a.notes}`] : []),
    ].join('\n');
  }
  if (schemaId.startsWith('dev/review@')) {
    return [`Verdict: ${String(a.verdict).replaceAll('_', ' ')}`, '', String(a.summary), '', 'Findings:', ...list(a.findings, (f: Json) => `${f.severity}${f.file ? ` ${f.file}` : ''}: ${f.message}`)].join('\n');
  }
  return JSON.stringify(content, null, 2);
}

/** One line saying what an artifact is about, for a confirmation prompt. */
export function artifactSummary(schemaId: string, content: unknown): string {
  const a = (content ?? {}) as Json;
  if (schemaId.startsWith('dev/spec@')) return `spec "${a.title}": ${Array.isArray(a.requirements) ? a.requirements.length : 0} requirements, ${Array.isArray(a.openQuestions) ? a.openQuestions.length : 0} open questions`;
  if (schemaId.startsWith('dev/review@')) return `review: ${String(a.verdict)}`;
  if (typeof a.summary === 'string') return a.summary;
  return schemaId;
}
