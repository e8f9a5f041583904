import { TemplateExample } from '@backstage/plugin-scaffolder-node';

/** Examples shown in the scaffolder's action documentation (`/create/actions`). */
export const examples: TemplateExample[] = [
  {
    description:
      'Order an App for the only tenant of the user; the step ends when the pull request is open.',
    example: `steps:
  - id: order
    name: Order the shop App
    action: maxcloud:order:create
    input:
      kind: App
      name: \${{ parameters.name }}
      parameters:
        image: ghcr.io/acme/shop:1.2.3
        port: 8080
        scaling:
          minScale: 0
          maxScale: 5
output:
  links:
    - title: Pull request
      url: \${{ steps.order.output.pullRequestUrl }}
    - title: View in the catalog
      entityRef: \${{ steps.order.output.entityRef }}
`,
  },
  {
    description:
      'Order a Database for a chosen tenant and wait until it is merged (databases need an approving review).',
    example: `steps:
  - id: database
    name: Order the database
    action: maxcloud:order:create
    input:
      kind: Database
      name: \${{ parameters.name }}-db
      tenant: \${{ parameters.tenant }}
      wait: merged
      timeoutSeconds: 3600
      parameters:
        version: 17
        storage: 20Gi
        instances: 2
`,
  },
  {
    description:
      'Order an App and wait until it serves; link to it when the platform reports its URL.',
    example: `steps:
  - id: order
    name: Order and start the App
    action: maxcloud:order:create
    input:
      kind: App
      name: hello
      tenant: acme-shop
      wait: ready
      timeoutSeconds: 600
      parameters:
        image: nginx:1.27
        port: 80
output:
  links:
    - title: Open the App
      url: \${{ steps.order.output.resourceUrl }}
      if: \${{ steps.order.output.resourceUrl | length > 0 }}
    - title: Order
      url: \${{ steps.order.output.orderUrl }}
`,
  },
  {
    description:
      'Only place the order: the step ends as soon as the order service has stored it.',
    example: `steps:
  - id: record
    name: Order a DNS record
    action: maxcloud:order:create
    input:
      kind: DNSRecord
      name: www
      wait: none
      parameters:
        name: www
        type: CNAME
        targets: [shop.acme-shop.apps.maxcloud.example]
`,
  },
];
