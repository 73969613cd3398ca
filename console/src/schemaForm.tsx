// A form generated from a tool's input schema: a labelled field per property, typed; enums as
// selects; objects, arrays and anything else as a JSON text field. Values become the call's
// `arguments`, checked against the types first.

import type { JsonSchema } from './types';

export type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

export interface FieldSpec {
  name: string;
  kind: Kind;
  /** What the schema says the value is, for people: `string`, `array of string`, ... */
  typeText: string;
  required: boolean;
  description?: string;
  options?: unknown[];
  /** For `json`: the JSON type wanted, when the schema says. */
  jsonType?: 'object' | 'array';
  initial: string | boolean;
}

export type Values = Record<string, string | boolean>;

/** The first type that is not `null`, from `type`, `anyOf` or `oneOf`. */
function typeOf(s: JsonSchema): { type: string | null; schema: JsonSchema } {
  if (typeof s.type === 'string') return { type: s.type, schema: s };
  if (Array.isArray(s.type)) return { type: s.type.find((t) => t !== 'null') ?? null, schema: s };
  for (const variant of s.anyOf ?? s.oneOf ?? []) {
    if (variant.type === 'null') continue;
    const inner = typeOf(variant);
    return { type: inner.type, schema: { ...variant, description: s.description ?? variant.description, default: s.default ?? variant.default } };
  }
  if (s.properties) return { type: 'object', schema: s };
  return { type: null, schema: s };
}

/** An enum given as `enum`, or as alternatives that are each a `const`. */
function enumOf(s: JsonSchema): unknown[] | null {
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum;
  const alts = (s.anyOf ?? s.oneOf ?? []).filter((v) => v.type !== 'null');
  if (alts.length > 0 && alts.every((v) => 'const' in v)) return alts.map((v) => v.const);
  return null;
}

export function fieldsOf(schema: JsonSchema | undefined): FieldSpec[] {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  return Object.entries(props).map(([name, raw]) => {
    const options = enumOf(raw);
    const { type, schema: s } = typeOf(raw);
    const base = { name, required: required.has(name), description: s.description ?? raw.description };
    const dflt = s.default;
    if (options) {
      return { ...base, kind: 'enum', typeText: `one of ${options.map((o) => JSON.stringify(o)).join(', ')}`, options, initial: dflt !== undefined ? JSON.stringify(dflt) : '' };
    }
    switch (type) {
      case 'string':
        return { ...base, kind: 'string', typeText: s.format ? `string (${s.format})` : 'string', initial: typeof dflt === 'string' ? dflt : '' };
      case 'integer':
      case 'number':
        return { ...base, kind: type, typeText: rangeText(type, s), initial: typeof dflt === 'number' ? String(dflt) : '' };
      case 'boolean':
        return { ...base, kind: 'boolean', typeText: 'boolean', initial: base.required ? dflt === true : typeof dflt === 'boolean' ? String(dflt) : '' };
      case 'array': {
        const item = s.items ? typeOf(s.items).type : null;
        return { ...base, kind: 'json', jsonType: 'array', typeText: item ? `array of ${item}, as JSON` : 'array, as JSON', initial: dflt !== undefined ? JSON.stringify(dflt) : '' };
      }
      case 'object':
        return { ...base, kind: 'json', jsonType: 'object', typeText: 'object, as JSON', initial: dflt !== undefined ? JSON.stringify(dflt, null, 2) : '' };
      default:
        return { ...base, kind: 'json', typeText: 'any JSON value', initial: dflt !== undefined ? JSON.stringify(dflt) : '' };
    }
  });
}

function rangeText(type: string, s: JsonSchema): string {
  const parts = [];
  if (typeof s.minimum === 'number') parts.push(`≥ ${s.minimum}`);
  if (typeof s.maximum === 'number') parts.push(`≤ ${s.maximum}`);
  return parts.length ? `${type} (${parts.join(', ')})` : type;
}

export function initialValues(fields: FieldSpec[]): Values {
  return Object.fromEntries(fields.map((f) => [f.name, f.initial]));
}

export type Built = { ok: true; args: Record<string, unknown> } | { ok: false; errors: Record<string, string> };

/** The call's arguments from the form, or what is wrong with each field. */
export function buildArguments(fields: FieldSpec[], values: Values): Built {
  const args: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.kind === 'boolean' && f.required) {
      args[f.name] = v === true;
      continue;
    }
    const text = typeof v === 'string' ? v : '';
    if (text.trim() === '' && f.kind !== 'string') {
      if (f.required) errors[f.name] = 'Required.';
      continue;
    }
    if (f.kind === 'string') {
      if (text === '' && !f.required) continue;
      if (text === '' && f.required) {
        errors[f.name] = 'Required.';
        continue;
      }
      args[f.name] = text;
      continue;
    }
    if (f.kind === 'integer' || f.kind === 'number') {
      const n = Number(text);
      if (!Number.isFinite(n) || (f.kind === 'integer' && !Number.isInteger(n))) errors[f.name] = f.kind === 'integer' ? 'A whole number.' : 'A number.';
      else args[f.name] = n;
      continue;
    }
    if (f.kind === 'boolean' || f.kind === 'enum') {
      args[f.name] = JSON.parse(text);
      continue;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (f.jsonType === 'array' && !Array.isArray(parsed)) errors[f.name] = 'A JSON array, such as ["a", "b"].';
      else if (f.jsonType === 'object' && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) errors[f.name] = 'A JSON object, such as {"key": "value"}.';
      else args[f.name] = parsed;
    } catch (e) {
      errors[f.name] = `Not JSON: ${(e as Error).message}`;
    }
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, args };
}

interface FormProps {
  fields: FieldSpec[];
  values: Values;
  errors: Record<string, string>;
  onChange: (name: string, value: string | boolean) => void;
  idPrefix: string;
}

export function SchemaFields({ fields, values, errors, onChange, idPrefix }: FormProps) {
  if (fields.length === 0) return <p className="muted">This tool takes no arguments.</p>;
  return (
    <>
      {fields.map((f) => {
        const id = `${idPrefix}-${f.name}`;
        const hintId = `${id}-hint`;
        const errId = `${id}-error`;
        const describedBy = [hintId, errors[f.name] ? errId : null].filter(Boolean).join(' ');
        const v = values[f.name];
        const common = {
          id,
          'aria-describedby': describedBy,
          'aria-invalid': errors[f.name] ? true : undefined,
        } as const;
        let control;
        if (f.kind === 'boolean' && f.required) {
          control = <input {...common} type="checkbox" checked={v === true} onChange={(e) => onChange(f.name, e.target.checked)} />;
        } else if (f.kind === 'boolean' || f.kind === 'enum') {
          const options = f.kind === 'boolean' ? [true, false] : (f.options ?? []);
          control = (
            <select {...common} required={f.required} value={typeof v === 'string' ? v : ''} onChange={(e) => onChange(f.name, e.target.value)}>
              {(!f.required || v === '') && <option value="">{f.required ? 'Choose…' : '(not set)'}</option>}
              {options.map((o) => (
                <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
                  {typeof o === 'string' ? o : JSON.stringify(o)}
                </option>
              ))}
            </select>
          );
        } else if (f.kind === 'json') {
          control = (
            <textarea
              {...common}
              className="code"
              rows={f.jsonType === 'object' ? 4 : 2}
              required={f.required}
              spellCheck={false}
              placeholder={f.jsonType === 'array' ? '[]' : f.jsonType === 'object' ? '{}' : 'null'}
              value={typeof v === 'string' ? v : ''}
              onChange={(e) => onChange(f.name, e.target.value)}
            />
          );
        } else {
          control = (
            <input
              {...common}
              type={f.kind === 'string' ? 'text' : 'number'}
              step={f.kind === 'integer' ? 1 : f.kind === 'number' ? 'any' : undefined}
              required={f.required}
              value={typeof v === 'string' ? v : ''}
              onChange={(e) => onChange(f.name, e.target.value)}
            />
          );
        }
        return (
          <div className={`field${f.kind === 'boolean' && f.required ? ' checkbox' : ''}`} key={f.name}>
            <span className="label-row">
              <label htmlFor={id}>{f.name}</label>
              {f.required && (
                <span className="req" aria-hidden="true">
                  *
                </span>
              )}
            </span>
            {control}
            <p className="hint" id={hintId}>
              <span className="type">{f.typeText}</span>
              {f.required ? ', required' : ', optional'}
              {f.description ? `. ${f.description}` : ''}
            </p>
            {errors[f.name] && (
              <p className="field-error" id={errId}>
                {errors[f.name]}
              </p>
            )}
          </div>
        );
      })}
    </>
  );
}
