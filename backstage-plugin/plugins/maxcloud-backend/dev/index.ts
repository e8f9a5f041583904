// Development backend of the max-cloud plugins (`npm start` here, port 7007): the maxcloud backend plugin with
// Backstage's auth backend and its guest provider, so the dev app signs in as the configured guest user and
// the plugin sees a real Backstage user token. Configuration: ../../../app-config.yaml.
import { createBackend } from '@backstage/backend-defaults';

const backend = createBackend();
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));
backend.add(import('../src'));
backend.start();
