/** systemk's version, also reported as part of the node's kubelet version. */
export const VERSION = "0.1.0";
