// A user's definitions folder for tests: a small template of its own (two phases, a persona, a
// JSON Schema artifact, a loop back on the review's verdict), uniquely named so tests sharing
// the suite's database never collide.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface TriageFolder {
  root: string;
  /** The template's namespace and name suffix. */
  ns: string;
  /** `triage-<ns>@1`. */
  id: string;
  /** `<ns>/triage@1`. */
  schemaId: string;
  template: Record<string, any>;
  persona: Record<string, any>;
  schema: Record<string, any>;
  files: { template: string; persona: string; schema: string };
  /** Writes the three files as they now are. */
  write(): Promise<void>;
}

/** Notes the scripted agents write in a triage artifact (its schema's first example). */
export const TRIAGE_NOTES = 'the parser drops a trailing comma';

export async function triageFolder(parent: string): Promise<TriageFolder> {
  const root = await mkdtemp(path.join(parent, 'definitions-'));
  const ns = `t${Math.random().toString(36).slice(2, 10)}`;
  const name = `triage-${ns}`;
  const schemaId = `${ns}/triage@1`;
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required: ['decision', 'notes'],
    additionalProperties: false,
    properties: { decision: { enum: ['accept', 'again'] }, notes: { type: 'string', minLength: 1 } },
    examples: [{ decision: 'accept', notes: TRIAGE_NOTES }],
  };
  const persona = { name: `triager-${ns}`, version: 1, title: 'Triager', instructions: 'You triage bug reports.' };
  const template: Record<string, any> = {
    name,
    version: 1,
    description: 'Triage a report, then check the triage; a check asking for changes sends it back once.',
    roles: { triager: { persona: `triager-${ns}@1` }, checker: { persona: 'reviewer@2' } },
    phases: [
      { key: 'triage', title: 'Triage', role: 'triager', instructions: 'Triage the report in .devflow/requirements.md.', artifact: { schema: schemaId, path: '.devflow/artifacts/triage.json' } },
      {
        key: 'check',
        title: 'Check',
        role: 'checker',
        instructions: 'Check the triage notes: {{triage.notes}}.',
        artifact: { schema: 'dev/review@1', path: '.devflow/artifacts/check.json' },
        loop: { when: { field: 'verdict', equals: 'request_changes' }, to: 'triage', maxRounds: 1, quote: 'findings' },
      },
    ],
  };
  const files = {
    template: path.join(root, 'templates', `${name}@1.json`),
    persona: path.join(root, 'personas', `triager-${ns}@1.json`),
    schema: path.join(root, 'schemas', ns, 'triage@1.json'),
  };
  const folder: TriageFolder = {
    root, ns, id: `${name}@1`, schemaId, template, persona, schema, files,
    async write() {
      for (const [file, value] of [[files.template, template], [files.persona, persona], [files.schema, schema]] as const) {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, JSON.stringify(value, null, 2));
      }
    },
  };
  await folder.write();
  return folder;
}

/** A copy of a built-in template under a new name in a definitions folder, changed by `change`. */
export async function templateVariant(parent: string, from: Record<string, any>, change: (t: Record<string, any>) => void): Promise<{ root: string; id: string }> {
  const root = await mkdtemp(path.join(parent, 'definitions-'));
  const template = structuredClone(from);
  template.name = `${from.name}-${Math.random().toString(36).slice(2, 10)}`;
  template.version = 1;
  change(template);
  await mkdir(path.join(root, 'templates'), { recursive: true });
  await writeFile(path.join(root, 'templates', `${template.name}@1.json`), JSON.stringify(template, null, 2));
  return { root, id: `${template.name}@1` };
}
