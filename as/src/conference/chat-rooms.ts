/**
 * Provisioned chat rooms (docs/conference.md): the room itself (owner, subject, maximum,
 * private) and the last messages said in it, both store state so that a room and what a joiner
 * is replayed survive AS restarts and are the same on every instance.
 */
import { randomBytes } from 'node:crypto';
import type { Collection, Store } from '../store/port.js';
import { UserError } from '../users/user-directory.js';

export type ChatRoom = {
  /** The room's conference URI, sip:<name>@<domain>. */
  _id: string;
  name: string;
  owner: string;
  subject?: string;
  maxParticipants?: number;
  /** Only the owner and the members the owner lets in may join (the join policy decides). */
  private: boolean;
  createdAt: Date;
};

/** One message said in a room, as the participants received it (CPIM, the sender as shown). */
export type RoomMessage = {
  _id: string;
  room: string;
  /** Order within the room (time of arrival, then a random tie-break). */
  seq: string;
  at: Date;
  contentType: string;
  body: string;
};

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class ChatRooms {
  private readonly rooms: Collection<ChatRoom>;
  private readonly messages: Collection<RoomMessage>;

  constructor(
    store: Store,
    private readonly domain: string,
    /** Whether a user holds this name (a room may not shadow a user's address). */
    private readonly userExists: (name: string) => Promise<boolean>,
  ) {
    this.rooms = store.collection<ChatRoom>('chat_rooms');
    this.messages = store.collection<RoomMessage>('chat_room_messages');
  }

  async start(): Promise<void> {
    await this.messages.ensureIndex({ fields: { room: 1, seq: 1 } });
  }

  uriOf(name: string): string {
    return `sip:${name}@${this.domain}`;
  }

  async add(r: {
    name: string;
    owner: string;
    subject?: string;
    maxParticipants?: number;
    private?: boolean;
  }): Promise<ChatRoom> {
    const name = r.name.toLowerCase();
    if (!NAME_RE.test(name))
      throw new UserError(`room name must be lower-case letters, digits, . _ - (${r.name})`, 'invalid');
    if (r.maxParticipants !== undefined && !(Number.isInteger(r.maxParticipants) && r.maxParticipants >= 2))
      throw new UserError('max must be a whole number of at least 2', 'invalid');
    const owner = this.ownerUri(r.owner);
    if (await this.userExists(name)) throw new UserError(`${name} is a user's name`, 'exists');
    const room: ChatRoom = {
      _id: this.uriOf(name),
      name,
      owner,
      private: r.private === true,
      createdAt: new Date(),
      ...(r.subject !== undefined ? { subject: r.subject } : {}),
      ...(r.maxParticipants !== undefined ? { maxParticipants: r.maxParticipants } : {}),
    };
    if (await this.rooms.findOne({ _id: room._id })) throw new UserError(`room ${name} exists`, 'exists');
    await this.rooms.insertOne(room);
    return room;
  }

  async get(uri: string): Promise<ChatRoom | undefined> {
    return (await this.rooms.findOne({ _id: uri })) ?? undefined;
  }

  async list(): Promise<ChatRoom[]> {
    return this.rooms.find({}, { sort: { _id: 1 } });
  }

  async remove(name: string): Promise<void> {
    const uri = this.uriOf(name.toLowerCase());
    if ((await this.rooms.deleteOne({ _id: uri })) === 0) throw new UserError(`no room ${name}`, 'missing');
    await this.messages.deleteMany({ room: uri });
  }

  /** Keeps a message of the room, and only the newest `keep` of them. */
  async remember(room: string, msg: { contentType: string; body: string; at: Date }, keep: number): Promise<void> {
    if (keep <= 0) return;
    const seq = `${msg.at.getTime().toString().padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
    await this.messages.insertOne({ _id: `${room}|${seq}`, room, seq, ...msg });
    const all = await this.messages.find({ room }, { sort: { seq: -1 } });
    for (const old of all.slice(keep)) await this.messages.deleteOne({ _id: old._id });
  }

  /** The newest `n` messages of the room, oldest first. */
  async lastMessages(room: string, n: number): Promise<RoomMessage[]> {
    if (n <= 0) return [];
    return (await this.messages.find({ room }, { sort: { seq: -1 }, limit: n })).reverse();
  }

  private ownerUri(owner: string): string {
    const o = owner.trim();
    if (/^sips?:[^@\s]+@[^@\s]+$/.test(o)) return o;
    if (/^[^@\s:]+@[^@\s]+$/.test(o)) return `sip:${o}`;
    if (/^[^@\s:]+$/.test(o)) return `sip:${o}@${this.domain}`;
    throw new UserError(`owner must be a user or a SIP URI (${owner})`, 'invalid');
  }
}
