// The region's identity provider as the tests meet it: node oidc-provider (OpenID Certified),
// configured the way Inera's IdP is described to services (docs/identity.md): authorization code
// flow with PKCE, the claims parameter, SITHS levels of assurance in `acr`, the commission claims,
// RP-initiated and back-channel logout, id tokens that live five minutes.
//
// Started by tests/oidc_support.py, configured through one environment variable, OP_CONFIG (JSON):
//   { "port": 4321, "issuer": "http://127.0.0.1:4321",
//     "clients": [ { client_id, client_secret | jwks, redirect_uris, post_logout_redirect_uris,
//                    backchannel_logout_uri, token_endpoint_auth_method } ],
//     "persons": { "<login>": { "acr": "...", "amr": ["..."], "claims": { ... } } } }
//
// A person signs in by choosing their login on the interaction page (the test stands in for the
// SITHS card); their `acr`, `amr` and claims are what the region's catalogue would release. Consent
// is implied: the region registers vardfil with the claims it may ask for.

import * as http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OP_CONFIG);
const persons = config.persons;
const PERSON_CLAIMS = [
  'employeeHsaId', 'given_name', 'family_name', 'email',
  'commissionHsaId', 'commissionName', 'commissionPurpose', 'commissionRight',
  'healthCareUnitHsaId', 'healthCareProviderHsaId', 'allCommissions',
];

function html(title, body) {
  return `<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>${title}</title></head>`
    + `<body><main><h1>${title}</h1>${body}</main></body></html>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  acrValues: ['http://id.sambi.se/loa/loa2', 'http://id.sambi.se/loa/loa3'],
  claims: { openid: ['sub', 'acr', 'amr'], profile: PERSON_CLAIMS },
  conformIdTokenClaims: false, // the claims go in the id token and in userinfo alike
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: { IdToken: 300, AccessToken: 300, Session: 3600, Interaction: 600, Grant: 3600 },
  cookies: { keys: ['vardfil-test-idp-cookie-key'] },
  // The IdP runs on loopback beside vardfil: its back-channel calls go to 127.0.0.1, which the
  // provider's SSRF guard refuses by default. A test IdP only.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  async findAccount(ctx, sub) {
    const person = persons[sub];
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...person.claims };
      },
    };
  },
  // vardfil is registered with the claims it may ask for: nothing to consent to per sign-in.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(PERSON_CLAIMS);
    await grant.save();
    return grant;
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
});

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const callback = provider.callback();

const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      const buttons = Object.keys(persons).map((login) => `<li><button type="submit" name="login" value="${escape(login)}"`
        + ` id="login-${escape(login)}">${escape(login)}</button></li>`).join('');
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(html('Logga in med SITHS eID (test-IdP)',
        `<form method="post" action="/interaction/${details.uid}/login"><ul>${buttons}</ul></form>`));
      return;
    }
    const form = await readForm(req);
    const login = form.get('login');
    const person = persons[login];
    if (!person) {
      res.statusCode = 400;
      res.end('no such test person');
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: login, acr: person.acr, amr: person.amr, remember: true },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 400;
    res.end(`interaction failed: ${err.message}`);
  }
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${config.issuer}\n`);
});
