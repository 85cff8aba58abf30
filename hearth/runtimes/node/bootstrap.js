// Hearth's Node.js runtime: Lambda's handler semantics over the Runtime API.
//
// Node standard library only (it runs inside the sandbox and loads nothing of the server).
//
// 1. Init (once per environment): resolve _HANDLER ("path/file.export[.nested]") under
//    LAMBDA_TASK_ROOT: file.js (CommonJS, or an ES module when the nearest package.json
//    says "type": "module"), file.mjs (ES module), file.cjs (CommonJS), else a module on
//    NODE_PATH. Failures go to init/error as Runtime.ImportModuleError,
//    Runtime.HandlerNotFound or Runtime.MalformedHandlerName, and the process exits.
// 2. Loop: GET invocation/next, call handler(event, context, callback). A returned promise
//    settles the invocation at once; callback(err, result) settles it when the event loop
//    is empty (context.callbackWaitsForEmptyEventLoop, true by default) or at once.
// 3. Errors are {errorType, errorMessage, trace}; an uncaught exception or an unhandled
//    rejection fails the invocation and ends the process, as on Lambda.
// 4. Handlers wrapped in awslambda.streamifyResponse get (event, responseStream, context)
//    and settle when the stream ends; their bytes are the payload (streaming.js).
//
// console.* writes Lambda's text lines, or JSON records with LoggingConfig JSON
// (logpatch.js).
//
// The HTTP client is a single keep-alive socket (net), unref'd while idle so that the
// event loop can drain for callbackWaitsForEmptyEventLoop. Requests may be pipelined:
// each result POST carries the next GET invocation/next in the same write (Hearth's
// Runtime API answers the POST's 202 together with the next event: one write less per
// invoke on each side). A pipelined GET the server never answered (it closed the
// connection after the POST, e.g. after a 413) is sent again on a new connection.
'use strict';

const net = require('net');
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const API = process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
const PREFIX = '/2018-06-01/runtime';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || '/var/task';

// ---------------------------------------------------------------- lean HTTP client
class Client {
  constructor(hostport) {
    const i = hostport.lastIndexOf(':');
    this.host = hostport.slice(0, i);
    this.port = Number(hostport.slice(i + 1));
    this.sock = null;
    this.buf = Buffer.alloc(0);
    this.waiting = []; // in request order: {resolve, reject, resend: Buffer | null}
  }

  _connect() {
    const sock = net.connect(this.port, this.host);
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this._parse();
    });
    const fail = (err) => {
      if (this.sock !== sock) return;
      this.sock = null;
      const partial = this.buf.length > 0;
      const waiting = this.waiting;
      this.waiting = [];
      for (let i = 0; i < waiting.length; i++) {
        const w = waiting[i];
        if (w.resend && !(i === 0 && partial)) {
          this._send(w.resend, { resolve: w.resolve, reject: w.reject, resend: null });
        } else {
          w.reject(err || new Error('Runtime API connection closed'));
        }
      }
    };
    sock.on('error', fail);
    sock.on('close', () => fail(null));
    this.sock = sock;
    this.buf = Buffer.alloc(0);
  }

  _parse() {
    while (this.waiting.length && this._parseOne());
    if (!this.waiting.length && this.sock) this.sock.unref();
  }

  _parseOne() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const head = this.buf.toString('latin1', 0, end).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (let i = 1; i < head.length; i++) {
      const c = head[i].indexOf(':');
      headers[head[i].slice(0, c).trim().toLowerCase()] = head[i].slice(c + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    if (this.buf.length < end + 4 + len) return false;
    const body = this.buf.subarray(end + 4, end + 4 + len);
    this.buf = this.buf.subarray(end + 4 + len);
    this.waiting.shift().resolve({ status, headers, body });
    return true;
  }

  _encode(method, urlPath, body, extraHeaders) {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    let head = `${method} ${PREFIX}${urlPath} HTTP/1.1\r\nHost: ${API}\r\n`;
    for (const [k, v] of Object.entries(extraHeaders || {})) head += `${k}: ${v}\r\n`;
    head += `Content-Length: ${payload.length}\r\n\r\n`;
    return payload.length ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1');
  }

  _send(bytes, waiter) {
    if (!this.sock) this._connect();
    this.sock.ref();
    this.waiting.push(waiter);
    this.sock.write(bytes);
  }

  request(method, urlPath, body, extraHeaders) {
    const bytes = this._encode(method, urlPath, body, extraHeaders);
    return new Promise((resolve, reject) => this._send(bytes, { resolve, reject, resend: null }));
  }

  // POST a result and pipeline GET invocation/next behind it, in one write.
  // Returns [the POST's answer, the next invocation] (two promises).
  postThenNext(urlPath, body, extraHeaders) {
    const post = this._encode('POST', urlPath, body, extraHeaders);
    const next = this._encode('GET', '/invocation/next');
    let posted, nextInvocation;
    if (!this.sock) this._connect();
    this.sock.ref();
    posted = new Promise((resolve, reject) => this.waiting.push({ resolve, reject, resend: null }));
    nextInvocation = new Promise((resolve, reject) => this.waiting.push({ resolve, reject, resend: next }));
    nextInvocation.catch(() => {}); // awaited by the main loop; never an unhandled rejection
    this.sock.write(Buffer.concat([post, next]));
    return [posted, nextInvocation];
  }
}

const client = new Client(API);

// `awslambda` (streamifyResponse, HttpResponseStream) for function code: see streaming.js.
const { STREAMING, BufferedResponseStream, RawResponse } = require('./streaming.js');

function errorRequest(err, type) {
  const doc = errorDoc(err, type);
  return [JSON.stringify(doc), {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Function-Error-Type': doc.errorType,
  }];
}

function postError(urlPath, err, type) {
  return client.request('POST', urlPath, ...errorRequest(err, type));
}

// ---------------------------------------------------------------- errors
// As Lambda's runtime (toRapidResponse): an Error, or an object shaped like one (string
// name, message and stack), gives its own fields; any other value gives its typeof and
// String() ("object" / "[object Object]", "number" / "42").
function isErrorLike(v) {
  return Boolean(v && v.name && v.message && v.stack && typeof v.name === 'string'
    && typeof v.message === 'string' && typeof v.stack === 'string');
}

function errorDoc(err, type) {
  if (err instanceof Error || isErrorLike(err)) {
    return {
      errorType: type || err.name || 'Error',
      errorMessage: err.message || '',
      trace: String(err.stack || '').split('\n'),
    };
  }
  let message;
  try {
    message = String(err);
  } catch (_e) {
    message = Object.prototype.toString.call(err);
  }
  return { errorType: type || typeof err, errorMessage: message, trace: [] };
}

function namedError(name, message, cause) {
  const e = new Error(message);
  e.name = name;
  if (cause && cause.stack) e.stack = `${name}: ${message}\n${cause.stack}`;
  return e;
}

// ---------------------------------------------------------------- console (logpatch.js)
const logs = require('./logpatch.js');

// ---------------------------------------------------------------- handler loading
function nearestPackageType(dir) {
  for (let d = dir; d.startsWith(TASK_ROOT) || d.startsWith('/opt'); d = path.dirname(d)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).type || 'commonjs';
    } catch (_e) {
      // no (readable) package.json here: look further up
    }
    if (d === path.dirname(d)) break;
  }
  return 'commonjs';
}

// ES module handlers may import packages from layers, as on Lambda (esm_layers.mjs); the
// hook is registered only when a layer ships Node packages, so other starts pay nothing.
function importEsm(file) {
  const { register } = require('module');
  if (typeof register === 'function' && fs.existsSync('/opt/nodejs')) {
    register(pathToFileURL(path.join(__dirname, 'esm_layers.mjs')).href);
  }
  return import(pathToFileURL(file).href);
}

async function loadModule(modulePath) {
  const base = path.resolve(TASK_ROOT, modulePath);
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    const esm = ext === '.mjs' || (ext === '.js' && nearestPackageType(path.dirname(file)) === 'module');
    return esm ? importEsm(file) : require(file);
  }
  const resolved = require.resolve(modulePath, { paths: [TASK_ROOT, ...(process.env.NODE_PATH || '').split(':')] });
  return resolved.endsWith('.mjs') ? import(pathToFileURL(resolved).href) : require(resolved);
}

async function loadHandler(handlerString) {
  const slash = handlerString.lastIndexOf('/');
  const dot = handlerString.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === handlerString.length - 1) {
    throw namedError('Runtime.MalformedHandlerName', 'Bad handler');
  }
  const modulePath = handlerString.slice(0, dot);
  const exportPath = handlerString.slice(dot + 1).split('.');
  let mod;
  try {
    mod = await loadModule(modulePath);
  } catch (err) {
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw namedError('Runtime.ImportModuleError', `Error: ${err.message}`, err);
    }
    if (err instanceof SyntaxError) {
      throw namedError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`, err);
    }
    throw err;
  }
  let fn = mod;
  for (const key of exportPath) fn = fn == null ? undefined : fn[key];
  if (fn === undefined) {
    throw namedError('Runtime.HandlerNotFound', `${handlerString} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw namedError('Runtime.HandlerNotFound', `${handlerString} is not a function`);
  }
  return fn;
}

// ---------------------------------------------------------------- invoke
function makeContext(headers, settle) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const env = process.env;
  let waits = true;
  const ctx = {
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: (err, result) => settle(err, result, false),
    succeed: (result) => settle(null, result, false),
    fail: (err) => settle(err == null ? 'handled' : err, undefined, false),
  };
  Object.defineProperty(ctx, 'callbackWaitsForEmptyEventLoop', {
    get: () => waits,
    set: (v) => { waits = Boolean(v); },
    enumerable: true,
  });
  if (headers['lambda-runtime-client-context']) {
    ctx.clientContext = JSON.parse(headers['lambda-runtime-client-context']);
  }
  if (headers['lambda-runtime-cognito-identity']) {
    ctx.identity = JSON.parse(headers['lambda-runtime-cognito-identity']);
  }
  return ctx;
}

function invokeOnce(handler, headers, body) {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (err, result) => {
      if (settled) return;
      settled = true;
      resolve({ err, result });
    };
    // What a callback gave, answered once the event loop is empty (Lambda's default);
    // a synchronous handler that never calls back answers null at that point.
    let fromCallback = null;
    let listening = false;
    const whenEmpty = () => {
      if (listening) return;
      listening = true;
      process.once('beforeExit', () => {
        listening = false;
        if (fromCallback) finish(fromCallback.err, fromCallback.result);
        else finish(null, null);
      });
    };
    const settle = (err, result, viaCallback) => {
      if (settled) return;
      if (viaCallback && ctx.callbackWaitsForEmptyEventLoop) {
        if (!fromCallback) fromCallback = { err, result };
        whenEmpty();
        return;
      }
      finish(err, result);
    };
    const ctx = makeContext(headers, settle);
    let event;
    try {
      event = JSON.parse(body.toString('utf8') || 'null');
    } catch (err) {
      finish(namedError('Runtime.UnmarshalError', `Unable to parse event: ${err.message}`));
      return;
    }
    if (handler[STREAMING] === 'response') {
      // Settles when the stream ends (the handler must end it, as on Lambda) or fails.
      const stream = new BufferedResponseStream();
      stream.on('finish', () => finish(null, new RawResponse(stream.body())));
      stream.on('error', (err) => finish(err));
      try {
        const ret = handler(event, stream, ctx);
        if (ret && typeof ret.then === 'function') {
          ret.then(null, (err) => finish(err == null ? new Error('handled') : err));
        }
      } catch (err) {
        finish(err == null ? new Error('handled') : err);
      }
      return;
    }
    let ret;
    try {
      ret = handler(event, ctx, (err, result) => settle(err, result, true));
    } catch (err) {
      finish(err == null ? new Error('handled') : err);
      return;
    }
    if (ret && typeof ret.then === 'function') {
      ret.then((result) => finish(null, result), (err) => finish(err == null ? new Error('handled') : err));
    } else {
      whenEmpty();
    }
  });
}

let activeRequestId = null;

async function main() {
  logs.patchConsole();
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER || '');
  } catch (err) {
    const doc = errorDoc(err);
    console.error(`${doc.errorType}: ${doc.errorMessage}`);
    await postError('/init/error', err).catch(() => {});
    process.exit(129);
  }
  let pending = null; // the next invocation, pipelined behind the last result
  for (;;) {
    const { headers, body } = await (pending || client.request('GET', '/invocation/next'));
    pending = null;
    const rid = headers['lambda-runtime-aws-request-id'];
    if (headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
    else delete process.env._X_AMZN_TRACE_ID;
    logs.setRequestId(rid);
    activeRequestId = rid;
    const { err, result } = await invokeOnce(handler, headers, body);
    activeRequestId = null;
    if (err !== null && err !== undefined) {
      logs.logError('Invoke Error', err);
      await settleWith(client.postThenNext(`/invocation/${rid}/error`, ...errorRequest(err)));
    } else if (result instanceof RawResponse) {
      await settleWith(client.postThenNext(`/invocation/${rid}/response`, result.bytes));
    } else {
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        const doc = errorRequest(namedError('Runtime.SerializationError', e.message));
        await settleWith(client.postThenNext(`/invocation/${rid}/error`, ...doc));
        continue;
      }
      await settleWith(client.postThenNext(`/invocation/${rid}/response`, text === undefined ? 'null' : text, {
        'Content-Type': 'application/json',
      }));
    }
  }

  // Wait for the result POST's answer; the next invocation is then already asked for.
  async function settleWith([posted, next]) {
    pending = next;
    await posted;
  }
}

async function failInvocation(err, type, code) {
  const rid = activeRequestId;
  logs.logError(type === 'Runtime.UnhandledPromiseRejection' ? 'Unhandled Promise Rejection' : 'Uncaught Exception', err);
  if (rid) await postError(`/invocation/${rid}/error`, err, type).catch(() => {});
  process.exit(code);
}

process.on('uncaughtException', (err) => failInvocation(err, undefined, 129));
process.on('unhandledRejection', (reason) => {
  // As Lambda's runtime: the message is the reason's string form ("Error: ...").
  const err = namedError('Runtime.UnhandledPromiseRejection', String(reason), reason instanceof Error ? reason : null);
  failInvocation(err, 'Runtime.UnhandledPromiseRejection', 128);
});

main().catch((err) => {
  process.stderr.write(`hearth bootstrap: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
