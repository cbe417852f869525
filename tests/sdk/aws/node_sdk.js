'use strict';
/*
 * The AWS SDK for JavaScript v3 (@aws-sdk/client-kms) against kmsim's AWS KMS JSON 1.1 front end.
 *
 *     NODE_PATH=target/sdk/aws-node/node_modules node node_sdk.js lifecycle|crypto
 *
 * Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET, KMSIM_REGION.
 * The client is made the way a user points it at another endpoint:
 *
 *     new KMSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:PORT', credentials: { accessKeyId, secretAccessKey } })
 *
 * This SDK signs SigV4 with more headers than botocore (amz-sdk-invocation-id, amz-sdk-request, content-length,
 * x-amz-content-sha256, x-amz-user-agent), raises errors as exceptions named after `__type` (`error.name`) with
 * `$metadata.httpStatusCode` and `$metadata.requestId` (from x-amzn-RequestId). Independent checks use Node's crypto.
 * The report printed on stdout has the shape tests/sdk/alibaba/scenario.py describes.
 */

const crypto = require('crypto');
const path = require('path');
const { Readable } = require('stream');

const kmsPackage = require('@aws-sdk/client-kms');
const {
  KMSClient, CreateKeyCommand, DescribeKeyCommand, EncryptCommand, DecryptCommand, DisableKeyCommand,
  EnableKeyCommand, ScheduleKeyDeletionCommand, CancelKeyDeletionCommand, GenerateDataKeyCommand,
  GenerateRandomCommand, SignCommand, VerifyCommand, GetPublicKeyCommand, GenerateMacCommand, VerifyMacCommand,
  ListKeysCommand, paginateListKeys,
} = kmsPackage;
// The very handler the client would use, resolved from the client's own dependencies.
const clientDir = path.dirname(require.resolve('@aws-sdk/client-kms/package.json'));
const { NodeHttpHandler } = require(require.resolve('@smithy/node-http-handler', { paths: [clientDir] }));
const clientVersion = require('@aws-sdk/client-kms/package.json').version;

const ENDPOINT = process.env.KMSIM_ENDPOINT || '';
const ACCESS_KEY_ID = process.env.KMSIM_ACCESS_KEY_ID || '';
const ACCESS_KEY_SECRET = process.env.KMSIM_ACCESS_KEY_SECRET || '';
const REGION = process.env.KMSIM_REGION || 'us-east-1';
const KEY_ARN = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):key\/([A-Za-z0-9-]+)$/;

// ---------------------------------------------------------------------------
// The wire tap: the client's own HTTP handler, recording each exchange
// ---------------------------------------------------------------------------

const exchanges = [];

class TappedHandler extends NodeHttpHandler {
  async handle(request, options) {
    const header = (name) => {
      const found = Object.keys(request.headers || {}).find((k) => k.toLowerCase() === name);
      return found ? String(request.headers[found]) : '';
    };
    const authorization = header('authorization');
    const credential = (/Credential=([^,]+)/.exec(authorization) || [])[1] || '';
    const target = header('x-amz-target');
    const exchange = {
      service: target.startsWith('TrentService.') ? 'kms' : '',
      action: target.replace(/^TrentService\./, ''),
      target,
      user_agent: header('user-agent'),
      x_amz_user_agent: header('x-amz-user-agent'),
      signature: authorization ? authorization.split(' ')[0] : 'none',
      signed_headers: (/SignedHeaders=([^,]+)/.exec(authorization) || [])[1] || '',
      credential,
      access_key_id: credential.split('/')[0],
      amz_date: header('x-amz-date'),
      status: 0,
      code: '',
      message: '',
      request_id: '',
    };
    exchanges.push(exchange);
    const out = await super.handle(request, options);
    const response = out.response;
    exchange.status = response.statusCode;
    const headers = response.headers || {};
    const id = Object.keys(headers).find((k) => k.toLowerCase() === 'x-amzn-requestid');
    exchange.request_id = id ? String(headers[id]) : '';
    // Read the body once to see the error's __type, then hand the SDK an identical stream.
    const chunks = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
    const body = Buffer.concat(chunks);
    if (response.statusCode >= 300) {
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        exchange.code = parsed.__type || '';
        exchange.message = String(parsed.message || parsed.Message || '').slice(0, 300);
        if (!exchange.code && parsed.Code) exchange.not_aws = { Code: parsed.Code, RequestId: parsed.RequestId };
      } catch (e) { /* not JSON: left as is */ }
    }
    response.body = Readable.from([body]);
    return out;
  }
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

class CheckFailed extends Error {
  constructor(check, observed) {
    super(check);
    this.check = check;
    this.observed = observed;
  }
}

const doc = { sdk: `@aws-sdk/client-kms ${clientVersion}, SigV4`, scenario: process.argv[2] || '', sections: [], calls: [], facts: {} };
let current = null;
let doing = null;

function describeError(error) {
  const meta = (error && error.$metadata) || {};
  return {
    type: error && error.name,
    code: error && error.name,
    status: meta.httpStatusCode || null,
    request_id: meta.requestId || null,
    message: String(error && error.message).slice(0, 400),
    fault: error && error.$fault,
  };
}

async function section(name, body) {
  current = { name, passed: [], failure: null };
  doing = null;
  try {
    await body();
  } catch (error) {
    if (error instanceof CheckFailed) {
      current.failure = { check: error.check, observed: error.observed };
    } else {
      current.failure = {
        check: doing || '(before the first call)',
        error: `${error && error.name}: ${error && error.message}`,
        sdk_error: describeError(error),
        stack: String(error && error.stack).split('\n').slice(0, 12),
      };
    }
  }
  doc.sections.push(current);
}

function jsonable(value) {
  return JSON.parse(JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)) || 'null');
}

function check(name, condition, observed = {}) {
  if (!condition) throw new CheckFailed(name, jsonable(observed));
  current.passed.push(name);
}

function equal(name, actual, expected) {
  check(name, JSON.stringify(actual) === JSON.stringify(expected), { actual, expected });
}

function needs(state, ...names) {
  const missing = names.filter((n) => !(n in state));
  if (missing.length) throw new CheckFailed('needs what an earlier section made', { missing });
}

function logCall(entry, mark) {
  const seen = exchanges.slice(mark);
  entry.service = 'kms';
  entry.wire = seen.length ? { ...seen[seen.length - 1], attempts: seen.map((e) => e.request_id) } : null;
  entry.attempts = seen.length;
  if (seen.length && seen[seen.length - 1].access_key_id) entry.access_key_id = seen[seen.length - 1].access_key_id;
  doc.calls.push(entry);
}

/** One SDK call (`client.send(command)`), logged with the request id the SDK read and what went over the wire. */
async function call(action, command) {
  doing = `calling ${action}`;
  const mark = exchanges.length;
  const entry = { action, access_key_id: ACCESS_KEY_ID };
  try {
    const result = await client.send(command);
    Object.assign(entry, { ok: true, request_id: result.$metadata.requestId || '', code: '', status: result.$metadata.httpStatusCode });
    logCall(entry, mark);
    return result;
  } catch (error) {
    const seen = describeError(error);
    Object.assign(entry, { ok: false, request_id: seen.request_id || '', code: seen.code, status: seen.status, type: seen.type, message: seen.message });
    logCall(entry, mark);
    throw error;
  }
}

/** A call that must be refused with AWS's `code` and HTTP `status` (400 unless told). */
async function refused(checkName, action, command, code, status = 400) {
  try {
    await call(action, command);
  } catch (error) {
    const seen = describeError(error);
    check(checkName, seen.code === code && seen.status === status && Boolean(seen.request_id),
      { expected: { code, status, request_id: '(any)' }, raised: seen });
    return seen;
  }
  throw new CheckFailed(checkName, { expected: { code, status }, raised: 'nothing: it succeeded' });
}

const client = new KMSClient({
  region: REGION,
  endpoint: `http://${ENDPOINT}`,
  credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: ACCESS_KEY_SECRET },
  requestHandler: new TappedHandler(),
});

const bytes = (text) => new TextEncoder().encode(text);
const same = (a, b) => Buffer.from(a || []).equals(Buffer.from(b || []));

// ---------------------------------------------------------------------------
// lifecycle
// ---------------------------------------------------------------------------

async function lifecycle() {
  const state = {};
  const plaintext = bytes('node lifecycle plaintext');

  await section('CreateKey answers AWS KeyMetadata with the key ARN; DescribeKey shows the same', async () => {
    const made = await call('CreateKey', new CreateKeyCommand({ Description: 'node lifecycle' }));
    const meta = made.KeyMetadata || {};
    const arn = KEY_ARN.exec(meta.Arn || '');
    check('KeyMetadata.Arn is arn:aws:kms:<region>:<account>:key/<KeyId>', Boolean(arn) && arn[3] === meta.KeyId && arn[1] === REGION, { meta });
    equal('KeyMetadata.KeyState is Enabled', meta.KeyState, 'Enabled');
    equal('KeyMetadata.KeySpec is SYMMETRIC_DEFAULT', meta.KeySpec, 'SYMMETRIC_DEFAULT');
    check('KeyMetadata.CreationDate is a Date (epoch seconds on the wire)', meta.CreationDate instanceof Date, { creation: String(meta.CreationDate) });
    equal('the SDK signed AWS4-HMAC-SHA256', exchanges[exchanges.length - 1].signature, 'AWS4-HMAC-SHA256');
    Object.assign(state, { key: meta.KeyId, arn: meta.Arn });
    const described = (await call('DescribeKey', new DescribeKeyCommand({ KeyId: meta.Arn }))).KeyMetadata || {};
    equal('DescribeKey by ARN shows the same KeyId, state and description',
      [described.KeyId, described.KeyState, described.Description], [meta.KeyId, 'Enabled', 'node lifecycle']);
    await refused('DescribeKey of an unknown key raises NotFoundException', 'DescribeKey',
      new DescribeKeyCommand({ KeyId: crypto.randomUUID() }), 'NotFoundException');
  });

  await section('a disabled key refuses Encrypt with DisabledException until EnableKey', async () => {
    needs(state, 'key');
    const sealed = await call('Encrypt', new EncryptCommand({ KeyId: state.key, Plaintext: plaintext }));
    state.blob = sealed.CiphertextBlob;
    await call('DisableKey', new DisableKeyCommand({ KeyId: state.key }));
    const error = await refused('Encrypt raises DisabledException (400)', 'Encrypt',
      new EncryptCommand({ KeyId: state.key, Plaintext: plaintext }), 'DisabledException');
    equal('the exception is a client fault', error.fault, 'client');
    await call('EnableKey', new EnableKeyCommand({ KeyId: state.key }));
    const opened = await call('Decrypt', new DecryptCommand({ CiphertextBlob: state.blob }));
    check('after EnableKey, Decrypt (no KeyId) opens the earlier ciphertext', same(opened.Plaintext, plaintext), { opened });
  });

  await section('ScheduleKeyDeletion makes the key PendingDeletion (KMSInvalidStateException); CancelKeyDeletion leaves it Disabled', async () => {
    needs(state, 'key');
    const scheduled = await call('ScheduleKeyDeletion', new ScheduleKeyDeletionCommand({ KeyId: state.key, PendingWindowInDays: 7 }));
    equal('ScheduleKeyDeletion answers KeyState PendingDeletion and the key ARN', [scheduled.KeyState, scheduled.KeyId], ['PendingDeletion', state.arn]);
    check('its DeletionDate is a Date', scheduled.DeletionDate instanceof Date, { scheduled });
    await refused('Encrypt raises KMSInvalidStateException', 'Encrypt',
      new EncryptCommand({ KeyId: state.key, Plaintext: plaintext }), 'KMSInvalidStateException');
    await call('CancelKeyDeletion', new CancelKeyDeletionCommand({ KeyId: state.key }));
    const meta = (await call('DescribeKey', new DescribeKeyCommand({ KeyId: state.key }))).KeyMetadata || {};
    equal('after CancelKeyDeletion the key is Disabled', meta.KeyState, 'Disabled');
  });

  await section('ListKeys pages with the SDK paginator (Limit and Marker on the wire)', async () => {
    needs(state, 'key');
    const made = [state.key];
    for (let i = 0; i < 3; i += 1) {
      made.push((await call('CreateKey', new CreateKeyCommand({ Description: `node paging ${i}` }))).KeyMetadata.KeyId);
    }
    const seen = [];
    let pages = 0;
    doing = 'paging ListKeys';
    const mark = exchanges.length;
    try {
      for await (const page of paginateListKeys({ client, pageSize: 2 }, {})) {
        pages += 1;
        check(`page ${pages} holds at most 2 keys`, (page.Keys || []).length <= 2, { page: page.Keys });
        seen.push(...(page.Keys || []).map((k) => k.KeyId));
      }
    } finally {
      for (const exchange of exchanges.slice(mark)) {
        doc.calls.push({ action: 'ListKeys', service: 'kms', access_key_id: exchange.access_key_id || ACCESS_KEY_ID, ok: exchange.status === 200, request_id: exchange.request_id, code: exchange.status === 200 ? '' : exchange.code, status: exchange.status, via: 'wire', wire: { ...exchange, attempts: [exchange.request_id] }, attempts: 1 });
      }
    }
    check('the pages list every key once', made.every((k) => seen.includes(k)) && new Set(seen).size === seen.length, { seen, made });
    check('there were several pages', pages >= 2, { pages });
  });
}

// ---------------------------------------------------------------------------
// crypto
// ---------------------------------------------------------------------------

async function crypto_() {
  const state = {};
  const context = { app: 'node', note: 'a b/+=' };

  await section('Encrypt and Decrypt with a context; a wrong KeyId is IncorrectKeyException', async () => {
    const first = (await call('CreateKey', new CreateKeyCommand({ Description: 'node crypto 1' }))).KeyMetadata;
    const second = (await call('CreateKey', new CreateKeyCommand({ Description: 'node crypto 2' }))).KeyMetadata;
    Object.assign(state, { key: first.KeyId, arn: first.Arn });
    const sealed = await call('Encrypt', new EncryptCommand({ KeyId: first.KeyId, Plaintext: bytes('node secret'), EncryptionContext: context }));
    equal('Encrypt answers the key ARN', sealed.KeyId, first.Arn);
    check('CiphertextBlob is a Uint8Array', sealed.CiphertextBlob instanceof Uint8Array, {});
    const opened = await call('Decrypt', new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context }));
    check('Decrypt without KeyId opens it', same(opened.Plaintext, bytes('node secret')), {});
    equal('Decrypt answers the key ARN', opened.KeyId, first.Arn);
    await refused('Decrypt with another KeyId raises IncorrectKeyException', 'Decrypt',
      new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context, KeyId: second.KeyId }), 'IncorrectKeyException');
    await refused('Decrypt with another context raises InvalidCiphertextException', 'Decrypt',
      new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { app: 'other' } }), 'InvalidCiphertextException');
  });

  await section('GenerateDataKey gives a 32-byte key Decrypt opens; GenerateRandom gives bytes', async () => {
    needs(state, 'key');
    const made = await call('GenerateDataKey', new GenerateDataKeyCommand({ KeyId: state.key, KeySpec: 'AES_256' }));
    equal('the data key has 32 bytes', (made.Plaintext || []).length, 32);
    const opened = await call('Decrypt', new DecryptCommand({ CiphertextBlob: made.CiphertextBlob }));
    check('Decrypt of its CiphertextBlob is its Plaintext', same(opened.Plaintext, made.Plaintext), {});
    const random = await call('GenerateRandom', new GenerateRandomCommand({ NumberOfBytes: 48 }));
    equal('GenerateRandom 48 gives 48 bytes', (random.Plaintext || []).length, 48);
  });

  const signing = [
    ['ECC_NIST_P256', 'ECDSA_SHA_256', (key) => ({ key, dsaEncoding: 'der' })],
    ['RSA_2048', 'RSASSA_PSS_SHA_256', (key) => ({ key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', (key) => ({ key, padding: crypto.constants.RSA_PKCS1_PADDING })],
  ];
  for (const [spec, algorithm, verifier] of signing) {
    await section(`Sign ${algorithm} on ${spec}: Node's crypto verifies with GetPublicKey's DER; Verify agrees`, async () => {
      const meta = (await call('CreateKey', new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY', Description: `node ${algorithm}` }))).KeyMetadata;
      const published = await call('GetPublicKey', new GetPublicKeyCommand({ KeyId: meta.KeyId }));
      const publicKey = crypto.createPublicKey({ key: Buffer.from(published.PublicKey), format: 'der', type: 'spki' });
      const message = bytes(`the message Node signs with ${algorithm}`);
      const signed = await call('Sign', new SignCommand({ KeyId: meta.KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
      check("Node's crypto verifies the signature", crypto.verify('sha256', Buffer.from(message), verifier(publicKey), Buffer.from(signed.Signature)),
        { signature: Buffer.from(signed.Signature || []).toString('hex') });
      const digest = crypto.createHash('sha256').update(message).digest();
      const signedDigest = await call('Sign', new SignCommand({ KeyId: meta.KeyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: algorithm }));
      check("Node's crypto verifies the DIGEST signature against the message", crypto.verify('sha256', Buffer.from(message), verifier(publicKey), Buffer.from(signedDigest.Signature)), {});
      const verified = await call('Verify', new VerifyCommand({ KeyId: meta.KeyId, Message: message, MessageType: 'RAW', Signature: signed.Signature, SigningAlgorithm: algorithm }));
      equal('Verify answers SignatureValid true', verified.SignatureValid, true);
      await refused('Verify of another message raises KMSInvalidSignatureException', 'Verify',
        new VerifyCommand({ KeyId: meta.KeyId, Message: bytes('another'), MessageType: 'RAW', Signature: signed.Signature, SigningAlgorithm: algorithm }),
        'KMSInvalidSignatureException');
    });
  }

  await section('GenerateMac and VerifyMac on an HMAC_256 key', async () => {
    const meta = (await call('CreateKey', new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata;
    const message = bytes('node mac');
    const made = await call('GenerateMac', new GenerateMacCommand({ KeyId: meta.KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
    equal('the MAC has 32 bytes', (made.Mac || []).length, 32);
    const verified = await call('VerifyMac', new VerifyMacCommand({ KeyId: meta.KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256', Mac: made.Mac }));
    equal('VerifyMac answers MacValid true', verified.MacValid, true);
    await refused('VerifyMac of another message raises KMSInvalidMacException', 'VerifyMac',
      new VerifyMacCommand({ KeyId: meta.KeyId, Message: bytes('other'), MacAlgorithm: 'HMAC_SHA_256', Mac: made.Mac }), 'KMSInvalidMacException');
  });
}

async function main() {
  const scenarios = { lifecycle, crypto: crypto_ };
  const name = process.argv[2] || '';
  if (!scenarios[name]) {
    process.stderr.write(`usage: node node_sdk.js SCENARIO, one of: ${Object.keys(scenarios).join(', ')}\n`);
    process.exit(2);
  }
  try {
    await scenarios[name]();
  } catch (error) {
    doc.sections.push({ name: '(script)', passed: [], failure: { check: 'the script ran', error: String(error && error.stack) } });
    process.stdout.write(`${JSON.stringify(doc, null, 1)}\n`);
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(doc, null, 1)}\n`);
  process.exitCode = doc.sections.some((s) => s.failure) ? 1 : 0;
}

// The SDK warns on stderr about Node versions it will stop supporting; the report is on stdout either way.
main();
