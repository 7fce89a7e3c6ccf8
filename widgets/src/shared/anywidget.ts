/** The part of anywidget's model API the widgets use (https://anywidget.dev/en/afm/). */
export interface AnyModel<State> {
  get<K extends keyof State>(key: K): State[K];
  set<K extends keyof State>(key: K, value: State[K]): void;
  save_changes(): void;
  on(event: string, callback: (...args: never[]) => void): void;
  off?(event?: string | null, callback?: ((...args: never[]) => void) | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

export interface RenderProps<State> {
  model: AnyModel<State>;
  el: HTMLElement;
}
