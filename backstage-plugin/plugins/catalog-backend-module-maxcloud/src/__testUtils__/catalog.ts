/**
 * Test support (not exported by the package): checks entities the way the catalog does before it stores them.
 */
import {
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  Entity,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  resourceEntityV1alpha1Validator,
  SchemaValidEntityPolicy,
} from '@backstage/catalog-model';
import { templateEntityV1beta3Validator } from '@backstage/plugin-scaffolder-common';
import {
  EntityProviderConnection,
  EntityProviderMutation,
} from '@backstage/plugin-catalog-node';

const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(),
]);
const kindValidators = [
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  templateEntityV1beta3Validator,
];

/** Throws unless the entity passes the catalog's envelope policies and the validator of its kind. */
export async function expectValidEntity(entity: Entity): Promise<void> {
  await policy.enforce(entity);
  const results = await Promise.all(kindValidators.map(v => v.check(entity)));
  if (!results.some(Boolean))
    throw new Error(`no validator knows ${entity.apiVersion} ${entity.kind}`);
}

/** A catalog connection that records the mutations it is given. */
export function recordingConnection() {
  const mutations: EntityProviderMutation[] = [];
  const connection: EntityProviderConnection = {
    applyMutation: jest.fn(async (mutation: EntityProviderMutation) => {
      mutations.push(mutation);
    }),
    refresh: jest.fn(async () => {}),
  };
  /** The entities of the last mutation (full: all of them; delta: those added). */
  const last = () => {
    const mutation = mutations[mutations.length - 1];
    if (!mutation) return [];
    return mutation.type === 'full' ? mutation.entities : mutation.added;
  };
  const lastEntities = () => last().map(d => d.entity);
  const find = (kind: string, namespace: string, name: string) =>
    lastEntities().find(
      e =>
        e.kind === kind &&
        (e.metadata.namespace ?? 'default') === namespace &&
        e.metadata.name === name,
    );
  return { connection, mutations, last, lastEntities, find };
}
