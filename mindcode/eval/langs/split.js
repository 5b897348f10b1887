// The JavaScript bridge (mindcode.eval.langs.js; Python's is mindcode.eval.sandbox.split): a sample and its test in two
// node processes, so that the verdict is never the sample's to give. Run as `node -e <this file> candidate main.js
// ENTRY` (the untrusted program, which then serves calls of its entry point) or `node -e <this file> test` (the
// problem's own prompt helpers and test, read as JSON {prelude, test, entry_point} on stdin; the proxy of the entry
// point forwards each call). The test process writes its verdict (`passed` / `failed: ...`) on stdout and exits 0 only
// when it passed; the sandbox reads both.
//
// Calls cross two pipes, fd 3 and 4 (requests to the candidate, replies from it), in frames like split.py's: a
// 4-byte little-endian length, then JSON. Values are tagged JSON: null, booleans, strings, finite numbers as
// themselves; {undefined}, {number: "NaN" | "Infinity" | "-Infinity" | "-0"}, {bigint}, {map}, {set} and
// {object: [[key, value], ...]} (plain objects) for the rest; anything else, or a malformed frame, is the
// candidate's failure.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

const MAX_FRAME = 16 << 20;
const MAX_DEPTH = 64;
const MESSAGE = 4000; // characters of an error message kept
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const SPECIAL_NUMBERS = ['NaN', 'Infinity', '-Infinity', '-0'];

class ProtocolError extends Error {}
class EndOfStream extends Error {}

function encode(value, depth = 0) {
  if (depth > MAX_DEPTH) throw new Error('value nested too deeply');
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (value === undefined) return {undefined: true};
  if (typeof value === 'number') {
    if (Object.is(value, -0)) return {number: '-0'};
    return Number.isFinite(value) ? value : {number: String(value)};
  }
  if (typeof value === 'bigint') return {bigint: value.toString()};
  if (Array.isArray(value)) return Array.from(value, (v) => encode(v, depth + 1));
  if (value instanceof Map) return {map: Array.from(value, ([k, v]) => [encode(k, depth + 1), encode(v, depth + 1)])};
  if (value instanceof Set) return {set: Array.from(value, (v) => encode(v, depth + 1))};
  const proto = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto === Object.prototype || proto === null) {
    return {object: Object.entries(value).map(([k, v]) => [k, encode(v, depth + 1)])};
  }
  const kind = typeof value === 'object' ? (value.constructor && value.constructor.name) || 'object' : typeof value;
  throw new Error(`cannot pass a value of type ${kind} between the processes`);
}

function pairs(value, depth) {
  if (!Array.isArray(value) || !value.every((p) => Array.isArray(p) && p.length === 2)) {
    throw new ProtocolError('not an encoded value');
  }
  return value.map(([k, v]) => [decode(k, depth + 1), decode(v, depth + 1)]);
}

function decode(value, depth = 0) {
  if (depth > MAX_DEPTH) throw new ProtocolError('value nested too deeply');
  if (value === null || ['boolean', 'number', 'string'].includes(typeof value)) return value;
  if (Array.isArray(value)) return value.map((v) => decode(v, depth + 1));
  const keys = typeof value === 'object' ? Object.keys(value) : [];
  if (keys.length !== 1) throw new ProtocolError('not an encoded value');
  const [tag] = keys;
  const inner = value[tag];
  if (tag === 'undefined' && inner === true) return undefined;
  if (tag === 'number' && SPECIAL_NUMBERS.includes(inner)) return Number(inner);
  if (tag === 'bigint' && typeof inner === 'string' && /^-?\d+$/.test(inner)) return BigInt(inner);
  if (tag === 'map') return new Map(pairs(inner, depth));
  if (tag === 'set' && Array.isArray(inner)) return new Set(inner.map((v) => decode(v, depth + 1)));
  if (tag === 'object') {
    const entries = pairs(inner, depth);
    if (!entries.every(([k]) => typeof k === 'string')) throw new ProtocolError('not an encoded value');
    return Object.fromEntries(entries); // own properties only: a key "__proto__" changes no prototype
  }
  throw new ProtocolError('not an encoded value');
}

function writeAll(fd, data) {
  for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done);
}

function readExactly(fd, size) {
  const data = Buffer.alloc(size);
  for (let done = 0; done < size;) {
    const got = fs.readSync(fd, data, done, size - done, null);
    if (got === 0) throw new EndOfStream();
    done += got;
  }
  return data;
}

function send(fd, message) {
  let body = Buffer.from(JSON.stringify(message));
  if (body.length > MAX_FRAME) body = Buffer.from(JSON.stringify(['raise', "the value is larger than the protocol's frame"]));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  writeAll(fd, Buffer.concat([head, body]));
}

function receive(fd) {
  const size = readExactly(fd, 4).readUInt32LE(0);
  if (size > MAX_FRAME) throw new ProtocolError(`a frame of ${size} bytes`);
  try {
    return JSON.parse(readExactly(fd, size).toString('utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) throw new ProtocolError('a frame that is not JSON');
    throw error;
  }
}

function message(error) {
  let text;
  try {
    text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch (_) {
    text = 'an exception that cannot be shown';
  }
  return text.slice(0, MESSAGE);
}

// The candidate process: untrusted from the program's first line on. Runs main.js as a CommonJS module (as
// `node main.js` would), says whether it defined the entry point, then answers calls until the test closes the pipe.
function serveCandidate(file, entry) {
  const REQUESTS = 3;
  const REPLIES = 4;
  let fn;
  try {
    if (!IDENTIFIER.test(entry)) throw new Error(`not an identifier: ${entry}`);
    const filename = path.resolve(file);
    const source = `${fs.readFileSync(filename, 'utf8')}\n;return typeof ${entry} === 'undefined' ? undefined : ${entry};\n`;
    const body = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], {filename});
    const module = {exports: {}};
    fn = body(module.exports, Module.createRequire(filename), module, filename, path.dirname(filename));
  } catch (error) {
    send(REPLIES, ['raise', message(error)]);
    process.exit(0);
  }
  if (typeof fn !== 'function') {
    send(REPLIES, ['raise', `ReferenceError: ${entry} is not defined`]);
    process.exit(0);
  }
  send(REPLIES, ['ready']);
  for (;;) {
    let args;
    try {
      args = decode(receive(REQUESTS));
    } catch (_) {
      process.exit(0);
    }
    try {
      send(REPLIES, ['return', encode(fn(...args))]);
    } catch (error) {
      send(REPLIES, ['raise', message(error)]);
    }
  }
}

class CandidateError extends Error {}

// The test process: trusted. Its entry point is a proxy; its console.assert records failures (bigcode's harness
// counts what console.assert prints); the verdict is decided here, from what the test saw.
function runTest() {
  const REQUESTS = 4;
  const REPLIES = 3;
  const {prelude, test, entry_point: entry} = JSON.parse(fs.readFileSync(0, 'utf8'));
  const reply = () => {
    let answer;
    try {
      answer = receive(REPLIES);
    } catch (error) {
      if (error instanceof EndOfStream) throw new CandidateError('the program ended while the test was calling it');
      throw error;
    }
    if (!Array.isArray(answer) || !['ready', 'return', 'raise'].includes(answer[0]) ||
        (answer[0] === 'raise' && typeof answer[1] !== 'string')) {
      throw new ProtocolError('a reply that is not part of the protocol');
    }
    if (answer[0] === 'raise') throw new CandidateError(answer[1].slice(0, MESSAGE));
    return answer;
  };
  const proxy = (...args) => {
    try {
      send(REQUESTS, encode(args));
    } catch (error) {
      if (error.code === 'EPIPE') throw new CandidateError('the program ended while the test was calling it');
      throw error;
    }
    const answer = reply();
    if (answer[0] !== 'return' || answer.length !== 2) throw new ProtocolError('a reply that is not part of the protocol');
    return decode(answer[1]);
  };
  const verdict = (text, status) => {
    writeAll(1, Buffer.from(text.slice(0, MESSAGE)));
    process.exit(status);
  };
  const failures = [];
  console.assert = (condition, ...rest) => {
    if (!condition) failures.push(['Assertion failed', ...rest.map(String)].join(': '));
  };
  try {
    if (!IDENTIFIER.test(entry)) throw new Error(`not an identifier: ${entry}`);
    try {
      if (reply()[0] !== 'ready') throw new ProtocolError('a reply that is not part of the protocol');
    } catch (error) {
      if (!(error instanceof CandidateError) || !error.message.startsWith('the program ended')) throw error;
      throw new CandidateError('the program ended before the test could call it');
    }
    const filename = path.join(process.cwd(), 'test.js');
    const body = vm.compileFunction(`${prelude}\n${test}`, ['exports', 'require', 'module', entry], {filename});
    const module = {exports: {}};
    body(module.exports, Module.createRequire(filename), module, proxy);
  } catch (error) {
    if (error instanceof ProtocolError) verdict(`failed: the program broke the call protocol (${error.message})`, 1);
    verdict(`failed: ${error instanceof CandidateError ? error.message : message(error)}`, 1);
  }
  if (failures.length) verdict(`failed: ${failures[0]}`, 1);
  verdict('passed', 0);
}

const [role, ...rest] = process.argv.slice(1);
if (role === 'candidate') serveCandidate(...rest);
else if (role === 'test') runTest();
else throw new Error(`unknown role ${role}`);
