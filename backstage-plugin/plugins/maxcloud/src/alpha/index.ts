export { default, maxcloudApi, maxcloudEntityCard, maxcloudPage } from './plugin';
