'use strict';
/*
 * Alibaba Cloud's Node SDK for KMS (@alicloud/kms20160120, on @alicloud/rpc-client) against kmsim.
 *
 *     NODE_PATH=target/sdk/node/node_modules node node_sdk.js lifecycle|crypto|resources|secrets|signatures
 *
 * Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET.
 * The client is made as the SDK's README shows, with the endpoint and protocol a user sets to reach kmsim:
 *
 *     new Client({ endpoint: '127.0.0.1:PORT', protocol: 'http', accessKeyId, accessKeySecret })
 *
 * This SDK signs v1 HMAC-SHA1, sends every parameter in the query string, and sends a map parameter such as
 * EncryptionContext flattened (`EncryptionContext.app=billing`) unless the caller passes it as a JSON string.
 * It raises errors as `Error` with `code` "<Code>Error", `message` "code: <status>, <Message> requestid: <id>"
 * and `data` the whole error body. Independent checks use Node's own crypto (OpenSSL), never kmsim.
 *
 * The report printed on stdout has the shape scenario.py describes for the Python scripts.
 */

const crypto = require('crypto');
const http = require('http');
const path = require('path');

const Kms = require('@alicloud/kms20160120');
const Client = Kms.default;

// The very modules the SDK uses (resolved from its own dependency), whose clock and nonce the checks replace.
const rpcClientDir = path.dirname(require.resolve('@alicloud/rpc-client'));
const RpcUtil = require(require.resolve('@alicloud/rpc-util', { paths: [rpcClientDir] })).default;
const TeaUtil = require(require.resolve('@alicloud/tea-util', { paths: [rpcClientDir] })).default;

const ENDPOINT = process.env.KMSIM_ENDPOINT || '';
const ACCESS_KEY_ID = process.env.KMSIM_ACCESS_KEY_ID || '';
const ACCESS_KEY_SECRET = process.env.KMSIM_ACCESS_KEY_SECRET || '';
const ALIBABA_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const STALE_CODES = ['InvalidTimeStamp.Expired', 'IllegalTimestamp', 'RequestTimeTooSkewed'];

// ---------------------------------------------------------------------------
// The wire tap: what each request carried and how it was answered
// ---------------------------------------------------------------------------

const exchanges = [];
const originalRequest = http.request;
http.request = function tapped(...args) {
  const options = (typeof args[0] === 'object' && !(args[0] instanceof URL)) ? args[0] : (args[1] || {});
  const headers = options.headers || {};
  const header = (name) => {
    const found = Object.keys(headers).find((k) => k.toLowerCase() === name);
    return found ? String(headers[found]) : '';
  };
  const target = String(options.path || (args[0] instanceof URL ? args[0].search : args[0]) || '');
  const exchange = {
    user_agent: header('user-agent'),
    signature: target.includes('Signature=') ? (target.includes('SignatureMethod=HMAC-SHA1') ? 'v1 HMAC-SHA1' : 'v1') : 'none',
    status: 0,
    code: '',
    request_id: '',
  };
  exchanges.push(exchange);
  const request = originalRequest.apply(this, args);
  request.on('response', (response) => { exchange.status = response.statusCode; });
  return request;
};

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

const doc = { sdk: '@alicloud/kms20160120 1.2.0 on @alicloud/rpc-client, signed v1 HMAC-SHA1', scenario: process.argv[2] || '', sections: [], calls: [], facts: {} };
let current = null;
let doing = null;

function describeError(error) {
  const data = (error && typeof error.data === 'object' && error.data) || null;
  const status = /code: (\d+)/.exec(String(error && error.message));
  return {
    type: error && error.name,
    code: error && error.code,
    wire_code: data ? data.Code : null,
    status: status ? Number(status[1]) : null,
    request_id: data ? (data.RequestId || null) : null,
    message: String(error && error.message).slice(0, 400),
    data,
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

function check(name, condition, observed = {}) {
  if (!condition) throw new CheckFailed(name, observed);
  current.passed.push(name);
}

function equal(name, actual, expected) {
  check(name, JSON.stringify(actual) === JSON.stringify(expected), { actual, expected });
}

function needs(state, ...names) {
  const missing = names.filter((n) => !(n in state));
  if (missing.length) throw new CheckFailed('needs what an earlier section made', { missing });
}

/** One SDK call, logged with the RequestId the SDK read and what went over the wire. */
async function call(action, fn, accessKeyId = ACCESS_KEY_ID) {
  doing = `calling ${action}`;
  const mark = exchanges.length;
  const entry = { action, access_key_id: accessKeyId };
  const log = () => {
    const seen = exchanges.slice(mark);
    entry.wire = seen.length ? seen[seen.length - 1] : null;
    entry.attempts = seen.length;
    doc.calls.push(entry);
  };
  try {
    const result = await fn();
    Object.assign(entry, { ok: true, request_id: result && result.requestId, code: '', status: 200 });
    log();
    if (entry.wire) entry.wire.request_id = entry.request_id || '';
    return result;
  } catch (error) {
    const seen = describeError(error);
    Object.assign(entry, { ok: false, request_id: seen.request_id, code: seen.code, status: seen.status });
    log();
    if (entry.wire) {
      entry.wire.code = seen.wire_code || '';
      entry.wire.request_id = seen.request_id || '';
    }
    throw error;
  }
}

/** A call that must be refused with Alibaba code `code` (or one of a list) and HTTP `status`. */
async function refused(name, action, fn, code, status, accessKeyId) {
  const codes = Array.isArray(code) ? code : [code];
  try {
    await call(action, fn, accessKeyId);
  } catch (error) {
    const seen = describeError(error);
    check(name, codes.map((c) => `${c}Error`).includes(seen.code) && seen.status === status && !!seen.request_id,
      { expected: { code: codes.map((c) => `${c}Error`), status, request_id: '(any)' }, raised: seen });
    return seen;
  }
  throw new CheckFailed(name, { expected: { code, status }, raised: 'nothing: it succeeded' });
}

// ---------------------------------------------------------------------------
// The SDK, used as a user would
// ---------------------------------------------------------------------------

function newClient(accessKeyId = ACCESS_KEY_ID, accessKeySecret = ACCESS_KEY_SECRET) {
  return new Client({ endpoint: ENDPOINT, protocol: 'http', accessKeyId, accessKeySecret });
}

const client = newClient();
const b64 = (text) => Buffer.from(text).toString('base64');

async function createKey(description, fields = {}) {
  const body = await call('CreateKey', () => client.createKey(new Kms.CreateKeyRequest({ description, ...fields })));
  check('CreateKey answers KeyMetadata.KeyId', !!(body.keyMetadata && body.keyMetadata.keyId), { body });
  return body.keyMetadata;
}

async function describeKey(keyId) {
  return (await call('DescribeKey', () => client.describeKey(new Kms.DescribeKeyRequest({ keyId })))).keyMetadata;
}

async function encrypt(keyId, plaintext, encryptionContext) {
  return call('Encrypt', () => client.encrypt(new Kms.EncryptRequest({ keyId, plaintext: b64(plaintext), encryptionContext })));
}

async function decrypt(ciphertextBlob, encryptionContext) {
  return call('Decrypt', () => client.decrypt(new Kms.DecryptRequest({ ciphertextBlob, encryptionContext })));
}

// ---------------------------------------------------------------------------

async function lifecycle() {
  const state = {};

  await section("CreateKey answers keyMetadata, and DescribeKey shows the same", async () => {
    const meta = await createKey('lifecycle', { keySpec: 'Aliyun_AES_256', keyUsage: 'ENCRYPT/DECRYPT' });
    state.key = meta.keyId;
    equal('keyMetadata.keyState is Enabled', meta.keyState, 'Enabled');
    check("keyMetadata.creationDate is in Alibaba's format", ALIBABA_DATE.test(meta.creationDate || ''), { meta });
    const described = await describeKey(meta.keyId);
    for (const field of ['keyId', 'arn', 'keyState', 'keySpec', 'keyUsage', 'description', 'creationDate']) {
      equal(`DescribeKey shows the same keyMetadata.${field}`, described[field], meta[field]);
    }
  });

  await section('a disabled key refuses Encrypt with Rejected.Disabled and HTTP 409; EnableKey restores it', async () => {
    needs(state, 'key');
    const blob = (await encrypt(state.key, 'node lifecycle')).ciphertextBlob;
    await call('DisableKey', () => client.disableKey(new Kms.DisableKeyRequest({ keyId: state.key })));
    equal('DescribeKey shows keyState Disabled', (await describeKey(state.key)).keyState, 'Disabled');
    const error = await refused('Encrypt under a disabled key raises Rejected.DisabledError, "code: 409"', 'Encrypt',
      () => client.encrypt(new Kms.EncryptRequest({ keyId: state.key, plaintext: b64('x') })), 'Rejected.Disabled', 409);
    check('the error data has RequestId, HostId, Code, Message and Recommend',
      ['RequestId', 'HostId', 'Code', 'Message', 'Recommend'].every((k) => error.data && k in error.data), { data: error.data });
    await call('EnableKey', () => client.enableKey(new Kms.EnableKeyRequest({ keyId: state.key })));
    equal('after EnableKey, Decrypt opens the old ciphertext', (await decrypt(blob)).plaintext, b64('node lifecycle'));
  });

  await section('ScheduleKeyDeletion makes the key PendingDeletion until CancelKeyDeletion', async () => {
    needs(state, 'key');
    await call('ScheduleKeyDeletion', () => client.scheduleKeyDeletion(new Kms.ScheduleKeyDeletionRequest({ keyId: state.key, pendingWindowInDays: 7 })));
    const meta = await describeKey(state.key);
    equal('DescribeKey shows keyState PendingDeletion', meta.keyState, 'PendingDeletion');
    check("keyMetadata.deleteDate is in Alibaba's format", ALIBABA_DATE.test(meta.deleteDate || ''), { meta });
    await refused('Encrypt under a key pending deletion raises Rejected.PendingDeletionError, "code: 409"', 'Encrypt',
      () => client.encrypt(new Kms.EncryptRequest({ keyId: state.key, plaintext: b64('x') })), 'Rejected.PendingDeletion', 409);
    await call('CancelKeyDeletion', () => client.cancelKeyDeletion(new Kms.CancelKeyDeletionRequest({ keyId: state.key })));
    equal('after CancelKeyDeletion the key is Enabled', (await describeKey(state.key)).keyState, 'Enabled');
  });

  await section('UpdateKeyDescription changes what DescribeKey shows', async () => {
    needs(state, 'key');
    await call('UpdateKeyDescription', () => client.updateKeyDescription(new Kms.UpdateKeyDescriptionRequest({ keyId: state.key, description: 'described by node' })));
    equal('DescribeKey shows the new description', (await describeKey(state.key)).description, 'described by node');
  });

  await section('ListKeys pages with pageNumber, pageSize, totalCount and keys.key[]', async () => {
    needs(state, 'key');
    const made = [state.key, (await createKey('page 1')).keyId, (await createKey('page 2')).keyId];
    const seen = [];
    for (const [page, expected] of [[1, 2], [2, 1]]) {
      const body = await call('ListKeys', () => client.listKeys(new Kms.ListKeysRequest({ pageNumber: page, pageSize: 2 })));
      equal(`page ${page}: totalCount, pageNumber and pageSize`, [body.totalCount, body.pageNumber, body.pageSize], [3, page, 2]);
      const keys = (body.keys && body.keys.key) || [];
      equal(`page ${page} holds keys.key[] of ${expected}`, keys.length, expected);
      seen.push(...keys.map((k) => k.keyId));
    }
    equal('the pages hold each key once', seen.sort(), made.sort());
  });

  await section('an unknown key is refused with Forbidden.KeyNotFound and HTTP 404', async () => {
    await refused('DescribeKey of an unknown KeyId raises Forbidden.KeyNotFoundError, "code: 404"', 'DescribeKey',
      () => client.describeKey(new Kms.DescribeKeyRequest({ keyId: crypto.randomUUID() })), 'Forbidden.KeyNotFound', 404);
  });
}

// ---------------------------------------------------------------------------

const MESSAGE = Buffer.from('the message node had signed');

async function cryptoOperations() {
  const state = {};
  const plaintext = 'node plaintext';

  await section('Encrypt and Decrypt round-trip with encryptionContext as a map (sent flattened) and as a JSON string', async () => {
    const key = (await createKey('crypto')).keyId;
    state.key = key;
    const sealed = await encrypt(key, plaintext, { app: 'billing', tenant: '42' });
    equal('Encrypt answers the keyId', sealed.keyId, key);
    const opened = await decrypt(sealed.ciphertextBlob, { app: 'billing', tenant: '42' });
    equal('Decrypt with the same map gives back the plaintext', opened.plaintext, b64(plaintext));
    equal('Decrypt names the key version Encrypt used', opened.keyVersionId, sealed.keyVersionId);
    // A user may also pass the JSON string Alibaba's API reference shows; it is the same context.
    const asJson = await decrypt(sealed.ciphertextBlob, '{"tenant":"42","app":"billing"}');
    equal('Decrypt with the context as a JSON string gives back the plaintext', asJson.plaintext, b64(plaintext));
    await refused('Decrypt under another context raises InvalidParameterError, "code: 400"', 'Decrypt',
      () => client.decrypt(new Kms.DecryptRequest({ ciphertextBlob: sealed.ciphertextBlob, encryptionContext: { app: 'billing', tenant: '43' } })),
      'InvalidParameter', 400);
  });

  await section('GenerateDataKey and GenerateDataKeyWithoutPlaintext give data keys that Decrypt opens', async () => {
    needs(state, 'key');
    const made = await call('GenerateDataKey', () => client.generateDataKey(new Kms.GenerateDataKeyRequest({ keyId: state.key, numberOfBytes: 32 })));
    equal('numberOfBytes 32 gives a 32-byte plaintext', Buffer.from(made.plaintext || '', 'base64').length, 32);
    equal('Decrypt opens its ciphertextBlob to the same data key', (await decrypt(made.ciphertextBlob)).plaintext, made.plaintext);
    const bare = await call('GenerateDataKeyWithoutPlaintext', () => client.generateDataKeyWithoutPlaintext(new Kms.GenerateDataKeyWithoutPlaintextRequest({ keyId: state.key, keySpec: 'AES_128' })));
    equal('GenerateDataKeyWithoutPlaintext with AES_128 opens to 16 bytes', Buffer.from((await decrypt(bare.ciphertextBlob)).plaintext || '', 'base64').length, 16);
  });

  for (const [spec, algorithm] of [['RSA_2048', 'RSA_PSS_SHA_256'], ['RSA_2048', 'RSA_PKCS1_SHA_256'], ['EC_P256', 'ECDSA_SHA_256']]) {
    await section(`AsymmetricSign with ${algorithm} on an ${spec} key signs so that Node's crypto verifies it`, async () => {
      if (!state[spec]) state[spec] = (await createKey('signer', { keySpec: spec, keyUsage: 'SIGN/VERIFY' })).keyId;
      const keyId = state[spec];
      const pub = await call('GetPublicKey', () => client.getPublicKey(new Kms.GetPublicKeyRequest({ keyId })));
      const digest = crypto.createHash('sha256').update(MESSAGE).digest('base64');
      const signed = await call('AsymmetricSign', () => client.asymmetricSign(new Kms.AsymmetricSignRequest({ keyId, keyVersionId: pub.keyVersionId, algorithm, digest })));
      const verifier = { key: pub.publicKey };
      if (algorithm === 'RSA_PSS_SHA_256') Object.assign(verifier, { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      if (algorithm === 'RSA_PKCS1_SHA_256') Object.assign(verifier, { padding: crypto.constants.RSA_PKCS1_PADDING });
      if (algorithm === 'ECDSA_SHA_256') Object.assign(verifier, { dsaEncoding: 'der' });
      const signature = Buffer.from(signed.value || '', 'base64');
      check("Node's crypto verifies the signature with GetPublicKey's key", crypto.verify('sha256', MESSAGE, verifier, signature), { value: signed.value });
      const verified = await call('AsymmetricVerify', () => client.asymmetricVerify(new Kms.AsymmetricVerifyRequest({ keyId, keyVersionId: pub.keyVersionId, algorithm, digest, value: signed.value })));
      equal('AsymmetricVerify says true', verified.value, true);
    });
  }

  await section("AsymmetricDecrypt opens what Node's crypto encrypted with RSAES_OAEP_SHA_256; AsymmetricEncrypt round-trips", async () => {
    const keyId = (await createKey('decrypter', { keySpec: 'RSA_2048', keyUsage: 'ENCRYPT/DECRYPT' })).keyId;
    const pub = await call('GetPublicKey', () => client.getPublicKey(new Kms.GetPublicKeyRequest({ keyId })));
    const sealed = crypto.publicEncrypt({ key: pub.publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(plaintext)).toString('base64');
    const opened = await call('AsymmetricDecrypt', () => client.asymmetricDecrypt(new Kms.AsymmetricDecryptRequest({ keyId, keyVersionId: pub.keyVersionId, algorithm: 'RSAES_OAEP_SHA_256', ciphertextBlob: sealed })));
    equal('AsymmetricDecrypt gives back the plaintext', opened.plaintext, b64(plaintext));
    const again = await call('AsymmetricEncrypt', () => client.asymmetricEncrypt(new Kms.AsymmetricEncryptRequest({ keyId, keyVersionId: pub.keyVersionId, algorithm: 'RSAES_OAEP_SHA_256', plaintext: b64(plaintext) })));
    const reopened = await call('AsymmetricDecrypt', () => client.asymmetricDecrypt(new Kms.AsymmetricDecryptRequest({ keyId, keyVersionId: pub.keyVersionId, algorithm: 'RSAES_OAEP_SHA_256', ciphertextBlob: again.ciphertextBlob })));
    equal("AsymmetricEncrypt's ciphertext opens with AsymmetricDecrypt", reopened.plaintext, b64(plaintext));
  });

  await section('GetRandomPassword answers a password of the asked length', async () => {
    const body = await call('GetRandomPassword', () => client.getRandomPassword(new Kms.GetRandomPasswordRequest({ passwordLength: '16', excludeCharacters: 'xyz' })));
    const password = body.randomPassword || '';
    check('the password is 16 characters without x, y or z', password.length === 16 && !/[xyz]/.test(password), { length: password.length });
  });
}

// ---------------------------------------------------------------------------

async function resources() {
  const state = {};

  await section('aliases: CreateAlias, alias/<name> as KeyId, ListAliases, ListAliasesByKeyId, UpdateAlias, DeleteAlias', async () => {
    const key = (await createKey('aliased')).keyId;
    const other = (await createKey('aliased, other')).keyId;
    state.key = key;
    await call('CreateAlias', () => client.createAlias(new Kms.CreateAliasRequest({ aliasName: 'alias/node', keyId: key })));
    equal('Encrypt with alias/node uses the key', (await encrypt('alias/node', 'x')).keyId, key);
    const listed = await call('ListAliases', () => client.listAliases(new Kms.ListAliasesRequest({ pageNumber: 1, pageSize: 10 })));
    const aliases = (listed.aliases && listed.aliases.alias) || [];
    equal('ListAliases lists aliases.alias[] with totalCount 1', [listed.totalCount, aliases.map((a) => [a.aliasName, a.keyId])], [1, [['alias/node', key]]]);
    check('the alias has an aliasArn ending :alias/node', !!aliases[0] && String(aliases[0].aliasArn).endsWith(':alias/node'), { aliases });
    const byKey = await call('ListAliasesByKeyId', () => client.listAliasesByKeyId(new Kms.ListAliasesByKeyIdRequest({ keyId: key })));
    equal('ListAliasesByKeyId lists it', ((byKey.aliases && byKey.aliases.alias) || []).map((a) => a.aliasName), ['alias/node']);
    await call('UpdateAlias', () => client.updateAlias(new Kms.UpdateAliasRequest({ aliasName: 'alias/node', keyId: other })));
    equal('after UpdateAlias the alias names the other key', (await describeKey('alias/node')).keyId, other);
    await call('DeleteAlias', () => client.deleteAlias(new Kms.DeleteAliasRequest({ aliasName: 'alias/node' })));
    await refused('a deleted alias raises Forbidden.AliasNotFoundError, "code: 404"', 'DescribeKey',
      () => client.describeKey(new Kms.DescribeKeyRequest({ keyId: 'alias/node' })), 'Forbidden.AliasNotFound', 404);
  });

  await section('tags: TagResource, ListResourceTags, UntagResource', async () => {
    needs(state, 'key');
    await call('TagResource', () => client.tagResource(new Kms.TagResourceRequest({ keyId: state.key, tags: '[{"TagKey":"team","TagValue":"payments"},{"TagKey":"env","TagValue":"test"}]' })));
    const tags = async () => {
      const body = await call('ListResourceTags', () => client.listResourceTags(new Kms.ListResourceTagsRequest({ keyId: state.key })));
      return ((body.tags && body.tags.tag) || []).map((t) => `${t.tagKey}=${t.tagValue}`).sort();
    };
    equal('ListResourceTags shows tags.tag[] with both', await tags(), ['env=test', 'team=payments']);
    await call('UntagResource', () => client.untagResource(new Kms.UntagResourceRequest({ keyId: state.key, tagKeys: '["env"]' })));
    equal('UntagResource removed one', await tags(), ['team=payments']);
  });

  await section('versions: CreateKeyVersion, ListKeyVersions, DescribeKeyVersion', async () => {
    needs(state, 'key');
    const made = (await call('CreateKeyVersion', () => client.createKeyVersion(new Kms.CreateKeyVersionRequest({ keyId: state.key })))).keyVersion || {};
    check('CreateKeyVersion answers keyVersion.keyVersionId', !!made.keyVersionId, { made });
    const listed = await call('ListKeyVersions', () => client.listKeyVersions(new Kms.ListKeyVersionsRequest({ keyId: state.key, pageNumber: 1, pageSize: 10 })));
    const versions = (listed.keyVersions && listed.keyVersions.keyVersion) || [];
    equal('ListKeyVersions: totalCount is 2', listed.totalCount, 2);
    check('keyVersions.keyVersion[] holds the new version', versions.some((v) => v.keyVersionId === made.keyVersionId), { versions });
    const described = (await call('DescribeKeyVersion', () => client.describeKeyVersion(new Kms.DescribeKeyVersionRequest({ keyId: state.key, keyVersionId: made.keyVersionId })))).keyVersion || {};
    equal('DescribeKeyVersion describes it', [described.keyId, described.keyVersionId, described.creationDate], [made.keyId, made.keyVersionId, made.creationDate]);
  });
}

// ---------------------------------------------------------------------------

async function secrets() {
  const state = {};
  const name = 'node/password';
  const value = async (fields = {}) => call('GetSecretValue', () => client.getSecretValue(new Kms.GetSecretValueRequest({ secretName: name, ...fields })));

  await section('CreateSecret and GetSecretValue', async () => {
    const key = (await createKey('secrets')).keyId;
    const made = await call('CreateSecret', () => client.createSecret(new Kms.CreateSecretRequest({ secretName: name, secretData: 'first value', versionId: 'v1', encryptionKeyId: key })));
    equal('CreateSecret answers secretName and versionId', [made.secretName, made.versionId], [name, 'v1']);
    const got = await value();
    equal('GetSecretValue gives secretData, versionId and versionStages.versionStage[]',
      [got.secretData, got.versionId, got.versionStages && got.versionStages.versionStage], ['first value', 'v1', ['ACSCurrent']]);
    state.made = true;
  });

  await section('PutSecretValue, ListSecretVersionIds, UpdateSecretVersionStage, DescribeSecret, ListSecrets', async () => {
    needs(state, 'made');
    await call('PutSecretValue', () => client.putSecretValue(new Kms.PutSecretValueRequest({ secretName: name, versionId: 'v2', secretData: 'second value' })));
    equal('the new version is ACSCurrent', (await value()).secretData, 'second value');
    equal('versionStage ACSPrevious gives the first', (await value({ versionStage: 'ACSPrevious' })).secretData, 'first value');
    const ids = await call('ListSecretVersionIds', () => client.listSecretVersionIds(new Kms.ListSecretVersionIdsRequest({ secretName: name })));
    equal('ListSecretVersionIds lists versionIds.versionId[] with their stages',
      ((ids.versionIds && ids.versionIds.versionId) || []).map((v) => [v.versionId, v.versionStages && v.versionStages.versionStage]).sort(),
      [['v1', ['ACSPrevious']], ['v2', ['ACSCurrent']]]);
    await call('UpdateSecretVersionStage', () => client.updateSecretVersionStage(new Kms.UpdateSecretVersionStageRequest({ secretName: name, versionStage: 'ACSCurrent', removeFromVersion: 'v2', moveToVersion: 'v1' })));
    equal('UpdateSecretVersionStage moved ACSCurrent back', (await value()).secretData, 'first value');
    const described = await call('DescribeSecret', () => client.describeSecret(new Kms.DescribeSecretRequest({ secretName: name })));
    equal('DescribeSecret names the secret', described.secretName, name);
    check("DescribeSecret's createTime is in Alibaba's format", ALIBABA_DATE.test(described.createTime || ''), { described });
    const listed = await call('ListSecrets', () => client.listSecrets(new Kms.ListSecretsRequest({ pageNumber: 1, pageSize: 10 })));
    equal('ListSecrets lists secretList.secret[] with totalCount 1',
      [listed.totalCount, ((listed.secretList && listed.secretList.secret) || []).map((s) => s.secretName)], [1, [name]]);
  });

  await section('DeleteSecret and RestoreSecret', async () => {
    needs(state, 'made');
    const deleted = await call('DeleteSecret', () => client.deleteSecret(new Kms.DeleteSecretRequest({ secretName: name, recoveryWindowInDays: '7' })));
    check("DeleteSecret answers plannedDeleteTime in Alibaba's format", ALIBABA_DATE.test(deleted.plannedDeleteTime || ''), { deleted });
    await refused('GetSecretValue in the recovery window raises Rejected.ResourceInDeleteWindowError, "code: 409"', 'GetSecretValue',
      () => client.getSecretValue(new Kms.GetSecretValueRequest({ secretName: name })), 'Rejected.ResourceInDeleteWindow', 409);
    await call('RestoreSecret', () => client.restoreSecret(new Kms.RestoreSecretRequest({ secretName: name })));
    equal('after RestoreSecret the value is back', (await value()).secretData, 'first value');
  });
}

// ---------------------------------------------------------------------------

async function patched(owner, name, replacement, body) {
  const original = owner[name];
  owner[name] = replacement;
  try {
    return await body();
  } finally {
    owner[name] = original;
  }
}

async function signatures() {
  const listKeys = (on) => () => on.listKeys(new Kms.ListKeysRequest({ pageNumber: 1, pageSize: 10 }));

  await section('calls signed with the right secret are answered', async () => {
    const key = (await createKey('signed')).keyId;
    equal('the SDK signed v1 HMAC-SHA1', exchanges[exchanges.length - 1].signature, 'v1 HMAC-SHA1');
    // Characters Node's querystring leaves unescaped in the URL but the signature percent-encodes: ~*'()!
    const context = { note: "a b~*'()!/+é", n: '1' };
    const sealed = await encrypt(key, 'signed', context);
    equal('Decrypt opens it', (await decrypt(sealed.ciphertextBlob, context)).plaintext, b64('signed'));
    const data = "p@ss word+/=é~*'()!";
    await call('CreateSecret', () => client.createSecret(new Kms.CreateSecretRequest({ secretName: 'node/signed', secretData: data, versionId: 'v1', encryptionKeyId: key })));
    equal('SecretData comes back intact', (await call('GetSecretValue', () => client.getSecretValue(new Kms.GetSecretValueRequest({ secretName: 'node/signed' })))).secretData, data);
  });

  await section('a wrong secret is refused with SignatureDoesNotMatch and HTTP 400', async () => {
    await refused('a wrong secret raises SignatureDoesNotMatchError, "code: 400"', 'ListKeys',
      listKeys(newClient(ACCESS_KEY_ID, `${ACCESS_KEY_SECRET}x`)), 'SignatureDoesNotMatch', 400);
  });

  await section('an unknown AccessKeyId is refused with InvalidAccessKeyId.NotFound and HTTP 404', async () => {
    const stranger = `LTAIkmsimStranger${crypto.randomBytes(4).toString('hex')}`;
    await refused('an unknown AccessKeyId raises InvalidAccessKeyId.NotFoundError, "code: 404"', 'ListKeys',
      listKeys(newClient(stranger, 'whatever')), 'InvalidAccessKeyId.NotFound', 404, stranger);
  });

  await section('a Timestamp 20 minutes old is refused with HTTP 400', async () => {
    const stale = new Date(Date.now() - 20 * 60 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const error = await patched(RpcUtil, 'getTimestamp', () => stale,
      () => refused('a Timestamp 20 minutes old is refused, "code: 400"', 'ListKeys', listKeys(client), STALE_CODES, 400));
    doc.facts['stale timestamp code'] = error.wire_code;
  });

  await section('a replayed SignatureNonce is refused with SignatureNonceUsed and HTTP 400', async () => {
    const nonce = crypto.randomBytes(16).toString('hex');
    await patched(TeaUtil, 'getNonce', () => nonce, async () => {
      const first = await call('ListKeys', listKeys(client));
      check('the first call with the nonce is answered', !!first.requestId, { first });
      await refused('the second call with the same nonce raises SignatureNonceUsedError, "code: 400"', 'ListKeys',
        listKeys(client), 'SignatureNonceUsed', 400);
    });
  });
}

// ---------------------------------------------------------------------------

const scenarios = { lifecycle, crypto: cryptoOperations, resources, secrets, signatures };

async function main() {
  const run = scenarios[doc.scenario];
  if (!run) {
    process.stderr.write(`usage: node node_sdk.js SCENARIO, one of: ${Object.keys(scenarios).join(', ')}\n`);
    process.exit(2);
  }
  let code = 0;
  try {
    await run();
    code = doc.sections.some((s) => s.failure) ? 1 : 0;
  } catch (error) {
    doc.sections.push({ name: '(script)', passed: [], failure: { check: 'the script ran', error: String(error && error.stack) } });
    code = 2;
  }
  process.stdout.write(`${JSON.stringify(doc, null, 1)}\n`, () => process.exit(code));
}

main();
