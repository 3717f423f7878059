// Every error the package throws is a FrescoError; each subclass names what was wrong
// in its fields, so callers can branch on them instead of parsing messages.

/** The base class of every error this package throws. */
export class FrescoError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A model could not be loaded: `kind` is one of `fetch`, `not-wasm`, `invalid-wasm`,
 * `imports`, `metadata`, `exports`, `abi`; `origin` is the URL or `<bytes>`.
 */
export class LoadError extends FrescoError {
  constructor(origin, kind, message, options) {
    super(`${origin}: ${message}`, options);
    this.origin = origin;
    this.kind = kind;
  }
}

/**
 * A row could not become the model's inputs: `kind` is `missing` (an input whose
 * policy is `error` has no value), `type` (a value the input's type does not admit),
 * `unknown` (a value for an input the model does not have) or `shape` (a batch of the
 * wrong size). `input` and `row` say where.
 */
export class InputError extends FrescoError {
  constructor({ model, input, row, kind, reason }) {
    const where = row === undefined ? "" : `row ${row}: `;
    super(`model \`${model}\`: ${where}${input === undefined ? "" : `input \`${input}\` `}${reason}`);
    this.model = model;
    this.input = input;
    this.row = row;
    this.kind = kind;
  }
}

/** The model failed while scoring: it trapped, or `fresco_predict` returned `status`. */
export class ScoreError extends FrescoError {
  constructor(model, reason, { status, cause } = {}) {
    super(`model \`${model}\`: ${reason}`, cause === undefined ? undefined : { cause });
    this.model = model;
    this.status = status;
  }
}

/** The interval rule could not be applied (no interval declared, or not finite). */
export class IntervalError extends FrescoError {}

/** A holdout with a fraction outside [0, 1]. */
export class HoldoutError extends FrescoError {}
