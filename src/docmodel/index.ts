// Document state derived from the change DAG with Seed's merge rules. Pure: no I/O, no clock.
export { type DagNode, heads, parseVersion, reachable, version } from "./dag.js";
export { type BlockPosition, DocState, materialize, TRASH } from "./doc-state.js";
export { DocModelError, type DocModelErrorReason } from "./errors.js";
export { actorIdOf, compareOpId, decodeRef, encodeRef, type OpId } from "./op-id.js";
export { type Edit, planOps } from "./plan.js";
export type {
  Annotation,
  Block,
  BlockNode,
  ChangeAnnotation,
  ChangeBlock,
  ChangeInput,
  DeleteBlocksOp,
  DocumentState,
  KeyValue,
  MoveBlocksOp,
  Op,
  OpRef,
  ReplaceBlockOp,
  SetAttributesOp,
  SetKeyOp,
} from "./types.js";
