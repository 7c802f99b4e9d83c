// A real OpenID Connect provider on loopback for the sign-in test (npm package oidc-provider,
// installed by scripts/setup.sh into ~/.cache/model-catalog/oidc-provider). devInteractions
// shows its own login form: any user name is accepted, which is all a test of the client needs.
// Usage: node provider.mjs PORT REDIRECT_URI CLIENT_SECRET
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'model-catalog',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri],  // Streamlit's st.logout ends the provider's session too
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true, name: id, preferred_username: id };
      },
    };
  },
  // the scopes' claims in the ID token itself (as most providers send them), not only from userinfo
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => false },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider ready on ${port}`));
