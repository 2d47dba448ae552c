// Copy-with-changes for actor states that a step replaces on every request. V8 builds an object literal of
// 22 fields in 30-45 ns, where `{ ...state, ...changes }` takes ~0.65 µs and `Object.assign({ ...state }, changes)`
// ~0.6 µs (router state, 2 million updates, Node 20), so the literal is compiled once from the fields of a
// template state rather than listed by hand, where a field added to the state could be forgotten.

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * A function `(state, changes) => next` for states of `template`'s shape: `next` has every field of the
 * template, each from `changes` unless absent (undefined) there, else from `state`. So a state field must
 * never hold undefined (use null), and the template must carry every field (build it with the state's type).
 */
export function updater<S extends object>(template: S): (state: S, changes: Partial<S>) => S {
  const fields = Object.keys(template);
  for (const field of fields) if (!IDENTIFIER.test(field)) throw new TypeError(`updater: field ${JSON.stringify(field)} is not an identifier`);
  const literal = fields.map((f) => `${f}: c.${f} === undefined ? s.${f} : c.${f}`).join(', ');
  // The fields are checked identifiers of our own state types: no outside text reaches the compiled code.
  return new Function('s', 'c', `return { ${literal} };`) as (state: S, changes: Partial<S>) => S;
}
