/**
 * Turns whole envelopes into bytes and back. `binary` serializers give Buffers, text ones
 * strings; `decode` may be handed either. A payload must not start with the byte 0xC1 (it marks
 * a compressed payload; no UTF-8 text or MessagePack starts with it).
 */
export interface Serializer {
  readonly name: string;
  readonly binary: boolean;
  encode(value: unknown): string | Uint8Array;
  decode(payload: string | Buffer): unknown;
}
