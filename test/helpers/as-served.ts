/**
 * What the AS serves, read from the text of its wiring (as/src/app.ts and as/src/app/*.ts, passed
 * as one text): the ISC services it registers with
 * its dispatcher (IscService) and the event packages it registers with its notifier
 * (EventPackage). Every `.register(...)` argument is followed to the class it constructs and
 * the name that class gives itself. No I/O: the caller passes app.ts and a lookup of a class's
 * source.
 */

export interface Served {
  services: string[];
  eventPackages: string[];
}

/** The text between the parenthesis at `open` and its match. */
function balanced(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unbalanced parenthesis at ${open}`);
}

/** Class name and constructor arguments of `new X(...)`, directly or through `const v = new X(...)`. */
function construction(app: string, arg: string): { cls: string; args: string } {
  const direct = /^new\s+(\w+)\s*\(/.exec(arg);
  if (direct) return { cls: direct[1]!, args: balanced(arg, direct[0].length - 1) };
  const variable = new RegExp(`(?:const|let)\\s+${arg}\\s*=\\s*new\\s+(\\w+)\\s*\\(`).exec(app);
  if (!/^\w+$/.test(arg) || !variable) throw new Error(`cannot tell what .register(${arg}) registers`);
  return { cls: variable[1]!, args: balanced(app, variable.index + variable[0].length - 1) };
}

/**
 * The name an instance of `cls` has: `readonly name = '...'` in its class body, or, for a
 * class taking its name as first constructor parameter (`constructor(readonly name`), the
 * string literal passed there.
 */
function nameOf(cls: string, source: string, args: string): string {
  const body = source.slice(source.indexOf(`class ${cls} `));
  const fixed = /readonly name(?:\s*:\s*[^=;]+)?\s*=\s*'([^']+)'/.exec(body)?.[1];
  if (fixed !== undefined) return fixed;
  if (/constructor\(\s*readonly name\b/.test(body)) {
    const literal = /^\s*'([^']+)'/.exec(args)?.[1];
    if (literal !== undefined) return literal;
  }
  throw new Error(`cannot tell the name of ${cls}`);
}

/** The first argument of a constructor call's argument text (up to its first top-level comma). */
function firstArgument(args: string): string {
  let depth = 0;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '(') depth++;
    else if (args[i] === ')') depth--;
    else if (args[i] === ',' && depth === 0) return args.slice(0, i).trim();
  }
  return args.trim();
}

export function servedByApp(app: string, classSource: (cls: string) => string): Served {
  const served: Served = { services: [], eventPackages: [] };
  for (const m of app.matchAll(/\.register\(/g)) {
    let { cls, args } = construction(app, balanced(app, m.index + m[0].length - 1).trim());
    let source = classSource(cls);
    // a wrapper (constructor(private readonly inner: IscService, ...)) serves what it wraps
    while (/constructor\(\s*private readonly inner: IscService\b/.test(source.slice(source.indexOf(`class ${cls} `)))) {
      ({ cls, args } = construction(app, firstArgument(args)));
      source = classSource(cls);
    }
    const declaration = new RegExp(`class ${cls}\\b[^{]*\\bimplements\\s+([\\w, ]+)\\{`).exec(source)?.[1] ?? '';
    if (/\bIscService\b/.test(declaration)) served.services.push(nameOf(cls, source, args));
    else if (/\bEventPackage\b/.test(declaration)) served.eventPackages.push(nameOf(cls, source, args));
    else throw new Error(`${cls} (registered in the wiring) is neither an IscService nor an EventPackage`);
  }
  return served;
}
