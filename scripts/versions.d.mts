// Types of scripts/versions.mjs for the TypeScript that imports it.
export declare const K6_VERSION: string;
export declare const K6_IMAGE: string;
export declare const VEGETA_MODULE: string;
export declare const VEGETA_VERSION: string;
export declare const SCHEMATHESIS_VERSION: string;
export declare const KUBERNETES_VALIDATE_VERSION: string;
export declare const K8S_SCHEMA_VERSION: string;
export declare const TOXIPROXY_MODULE: string;
export declare const TOXIPROXY_VERSION: string;
export declare const TOXIPROXY_BUILD: string;
