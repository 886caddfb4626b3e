// Validates rendered objects against the Kubernetes API schemas (kubernetes-models: one class per kind,
// `validate()` throws on a schema violation). An unknown kind is an error: the chart renders only these.
import { ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { K8sObject } from './render.js';

const kinds: Record<string, new (o: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/** Throws an Error naming the object and the violation. */
export function validateK8sObject(o: K8sObject): void {
  const key = `${o.apiVersion}/${o.kind}`;
  const Model = kinds[key];
  if (!Model) throw new Error(`${key} ${o.metadata?.name}: no schema for this kind`);
  try {
    new Model(o).validate();
  } catch (e) {
    throw new Error(`${key} ${o.metadata?.name}: ${(e as Error).message}`);
  }
}
