// The compiled KEMs hold no division instruction. The reductions mod q of ML-KEM-768 and
// sntrup761 once compiled to `i32.rem_u` / `i64.div_u` in the WASM build, whose time depends on
// the (secret) operands on many engines and CPUs: the KyberSlash timing leak. The Rust code now
// reduces by Barrett multiplication (crates/revtun-core/src/modulus.rs, checked against `%` and
// `/` by `cargo test`); this test reads the disassembly of every build (the native addon and
// both WASM modules, scalar and simd128), so that a division that comes back, through a new `%`
// or a compiler that stops turning one into a multiplication, fails here.
//
// What is inspected: every function reachable by direct calls from the KEM's code, that is the
// functions named after revtun-core's kem, mlkem768, sntrup761 and modulus modules (and the WASM
// module's exports that run a KEM). Library code they call, SHA-3 and SHA-512, the allocator,
// memcpy, is included. The one division allowed is the sponge's message-length bookkeeping in
// the WASM build: a division by the constant rate of SHA3-256/SHAKE256 (136 bytes), SHA3-512
// (72) or SHAKE128 (168), which only sees lengths.
//
// Tools: wabt's wasm-objdump and binutils' objdump (scripts/setup.sh installs both); the
// binaries are those scripts/setup.sh builds (npm run build:wasm, npm run build:native).

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One function of a disassembly: its name, the functions it calls directly, its divisions. */
interface DisassembledFunction {
  name: string;
  calls: Set<string>;
  /** Each division instruction with the instruction before it (where WASM puts a constant divisor). */
  divisions: { instruction: string; previous: string }[];
  indirectCalls: number;
}

type Disassembly = Map<string, DisassembledFunction>;

const bindings = (file: string) => fileURLToPath(new URL(`../../../bindings/${file}`, import.meta.url));
/** Both WASM builds: scalar, and compiled with +simd128 (scripts/build-wasm.sh). */
const WASM_MODULES = ['revtun-core.wasm', 'revtun-core-simd.wasm'];
const NATIVE_ADDON = bindings(`revtun-core.${process.platform}-${process.arch}.node`);

/** The sponge rates (bytes) of the SHA-3 functions the KEMs use: SHA3-512, SHA3-256 and SHAKE256, SHAKE128. */
const SPONGE_RATES = new Set([72, 136, 168]);

function disassemble(tool: string, args: string[], file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: build it first (npm run build:wasm / npm run build:native)`);
  return execFileSync(tool, [...args, file], { encoding: 'utf8', maxBuffer: 1 << 30 });
}

/** `wasm-objdump -d` output: `func[12] <name>:` headers, then `offset: bytes | instruction` lines. */
function parseWasm(text: string): Disassembly {
  const functions: Disassembly = new Map();
  let current: DisassembledFunction | undefined;
  let previous = '';
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+ func\[(\d+)\] <(.*)>:$/.exec(line);
    if (header) {
      current = { name: header[2]!, calls: new Set(), divisions: [], indirectCalls: 0 };
      functions.set(header[1]!, current);
      previous = '';
      continue;
    }
    const instruction = /\|\s*(.*)$/.exec(line)?.[1]?.trim();
    if (!current || !instruction) continue;
    const call = /^call (\d+)\b/.exec(instruction);
    if (call) current.calls.add(call[1]!);
    if (instruction.startsWith('call_indirect') || instruction.startsWith('return_call_indirect')) current.indirectCalls++;
    if (/^i(32|64)\.(div|rem)_[su]$/.test(instruction)) current.divisions.push({ instruction, previous });
    previous = instruction;
  }
  return functions;
}

/** `objdump -d -C` output: `address <name>:` headers, then `address:\tmnemonic operands` lines. */
function parseNative(text: string): Disassembly {
  const functions: Disassembly = new Map();
  let current: DisassembledFunction | undefined;
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+) <(.*)>:$/.exec(line);
    if (header) {
      current = { name: header[2]!, calls: new Set(), divisions: [], indirectCalls: 0 };
      functions.set(BigInt(`0x${header[1]}`).toString(16), current);
      continue;
    }
    const fields = /^\s*[0-9a-f]+:\t(\S+)\s*(.*)$/.exec(line);
    if (!current || !fields) continue;
    const [, mnemonic, operands] = fields as unknown as [string, string, string];
    // A call, or a jump to the start of another function (a tail call): `<name>` with no `+0x…`.
    const target = /^([0-9a-f]+) <[^+>]+>$/.exec(operands);
    if (target && (mnemonic === 'call' || mnemonic.startsWith('jmp') || mnemonic === 'bl' || mnemonic === 'b')) current.calls.add(target[1]!);
    else if (mnemonic === 'call' && operands.startsWith('*')) current.indirectCalls++;
    // x86_64 div/idiv (any operand size); arm64 udiv/sdiv. Not the floating-point divsd & co.
    if (/^(i?div[bwlq]?|[us]div)$/.test(mnemonic)) current.divisions.push({ instruction: `${mnemonic} ${operands}`, previous: '' });
  }
  return functions;
}

/** The functions reachable from `roots` by direct calls (roots included). */
function reachable(functions: Disassembly, roots: string[]): DisassembledFunction[] {
  const seen = new Set<string>();
  const pending = [...roots];
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (seen.has(id) || !functions.has(id)) continue;
    seen.add(id);
    pending.push(...functions.get(id)!.calls);
  }
  return [...seen].map((id) => functions.get(id)!);
}

function idsWhere(functions: Disassembly, test: (name: string) => boolean): string[] {
  return [...functions].filter(([, f]) => test(f.name)).map(([id]) => id);
}

/** A division the sponge makes of a length by its constant rate: `i32.const 136` then `i32.div_u`. */
function isSpongeRateDivision({ instruction, previous }: { instruction: string; previous: string }): boolean {
  const divisor = /^i(32|64)\.const (\d+)$/.exec(previous);
  return instruction.endsWith('_u') && divisor !== null && SPONGE_RATES.has(Number(divisor[2]));
}

function describeDivisions(functions: DisassembledFunction[], allowed: (division: DisassembledFunction['divisions'][number]) => boolean): string[] {
  return functions.flatMap((f) => f.divisions.filter((d) => !allowed(d)).map((d) => `${f.name}: ${d.instruction} (after ${d.previous || '?'})`));
}

describe('KEM code compiled without secret-dependent division (KyberSlash)', () => {
  it.each(WASM_MODULES)('the WASM module %s: no div/rem in the KEM functions or anything they call, except the sponge rate', (file) => {
    const functions = parseWasm(disassemble('wasm-objdump', ['-d'], bindings(file)));
    // Rust's mangled paths: _ZN11revtun_core8mlkem768… for functions, and
    // _ZN…$LT$revtun_core..kem..ShakeStream$u20$as$u20$… for trait implementations.
    const kemModule = /_ZN11revtun_core(3kem|8mlkem768|9sntrup761|7modulus)|revtun_core\.\.(kem|mlkem768|sntrup761|modulus)\.\./;
    // The exports that run a KEM; not revtun_kem_describe, which formats the public table of sizes.
    const kemExport = /^revtun_kem_(new|public_key|encapsulate|decapsulate|free)$/;
    const roots = idsWhere(functions, (name) => kemExport.test(name) || kemModule.test(name));
    const checked = reachable(functions, roots);
    // Without the name section this would check nothing: the KEM functions must be found.
    expect(roots.length).toBeGreaterThanOrEqual(6);
    expect(checked.some((f) => /8mlkem768/.test(f.name))).toBe(true);
    expect(checked.some((f) => /9sntrup761/.test(f.name))).toBe(true);
    // An indirect call could reach code the walk does not see.
    expect(checked.filter((f) => f.indirectCalls > 0).map((f) => f.name)).toEqual([]);
    expect(describeDivisions(checked, isSpongeRateDivision)).toEqual([]);
    // The scan does see divisions: the sponge's own are there, as expected.
    expect(checked.some((f) => f.divisions.some(isSpongeRateDivision))).toBe(true);
  });

  it('the native addon: no div/idiv in the KEM functions or anything they call', () => {
    const functions = parseNative(disassemble('objdump', ['-d', '--no-show-raw-insn', '-C'], NATIVE_ADDON));
    // Functions of those modules, and trait implementations for their types (`<revtun_core::kem::ShakeStream as …>::fill`).
    const kemModule = /revtun_core::(kem|mlkem768|sntrup761|modulus)::/;
    // Indirect calls here (`call *…`) go through the GOT to libc's memcpy & co and through
    // sntrup761's `dyn RandomSource` to ShakeStream::fill, a root of its own, so the walk does
    // not need to follow them.
    const roots = idsWhere(functions, (name) => kemModule.test(name));
    const checked = reachable(functions, roots);
    // A stripped library would check nothing: the KEM symbols must be found.
    expect(checked.some((f) => f.name.startsWith('revtun_core::mlkem768::'))).toBe(true);
    expect(checked.some((f) => f.name.startsWith('revtun_core::sntrup761::'))).toBe(true);
    expect(describeDivisions(checked, () => false)).toEqual([]);
    // The scan does see divisions: the packet code divides public lengths by the block size.
    expect([...functions.values()].some((f) => f.divisions.length > 0)).toBe(true);
  });
});
