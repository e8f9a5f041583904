import type { Entity } from '@backstage/catalog-model';
import { MAXCLOUD_ANNOTATIONS, parseResourceRef } from '@maxcloud/backstage-plugin-maxcloud-common';

/**
 * Whether a catalog entity stands for a max-cloud resource: it has `maxcloud.dev/resource: <Kind>/<name>`.
 *
 * @public
 */
export function isMaxcloudResource(entity: Entity): boolean {
  return !!parseResourceRef(entity.metadata.annotations?.[MAXCLOUD_ANNOTATIONS.resource]);
}
