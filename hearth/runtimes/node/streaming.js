// Response streaming handlers for Hearth's Node.js runtime (loaded by bootstrap.js).
//
// Lambda's Node runtime exposes `awslambda` to function code: streamifyResponse marks a
// handler (event, responseStream, context) as response streaming, HttpResponseStream.from
// writes the function URL prelude (JSON metadata, then 8 NUL bytes) before the first
// write. Hearth's Invoke buffers such a response (as Lambda does for Invoke): the bytes
// written, up to the end of the stream, are the payload.
'use strict';

const { Writable } = require('stream');

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const MAX_BUFFERED = 6 * 1024 * 1024;

/** The stream a streaming handler writes to; keeps what is written, in order. */
class BufferedResponseStream extends Writable {
  constructor() {
    super();
    this.chunks = [];
    this.size = 0;
    this.contentType = 'application/octet-stream';
    this._onBeforeFirstWrite = null;
  }

  setContentType(type) {
    this.contentType = type;
  }

  _write(chunk, _encoding, done) {
    if (this._onBeforeFirstWrite) {
      const before = this._onBeforeFirstWrite;
      this._onBeforeFirstWrite = null;
      before((c) => this._keep(c));
    }
    this._keep(chunk);
    done();
  }

  _keep(chunk) {
    const b = Buffer.from(chunk);
    // Bounded: past Lambda's 6 MB response limit nothing more is kept; the Runtime API
    // answers the oversized response with Function.ResponseSizeTooLarge.
    if (this.size <= MAX_BUFFERED) this.chunks.push(b);
    this.size += b.length;
  }

  body() {
    return Buffer.concat(this.chunks);
  }
}

global.awslambda = {
  streamifyResponse(handler, options) {
    handler[STREAMING] = 'response';
    if (options && options.highWaterMark) {
      handler[Symbol.for('aws.lambda.runtime.handler.highWaterMark')] = options.highWaterMark;
    }
    return handler;
  },
  HttpResponseStream: class HttpResponseStream {
    static from(underlyingStream, prelude) {
      underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
      const metadata = JSON.stringify(prelude);
      underlyingStream._onBeforeFirstWrite = (write) => {
        write(metadata);
        write(new Uint8Array(8));
      };
      return underlyingStream;
    }
  },
};

/** The raw bytes a streaming handler wrote (posted as they are, not as JSON). */
class RawResponse {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

module.exports = { STREAMING, BufferedResponseStream, RawResponse };
