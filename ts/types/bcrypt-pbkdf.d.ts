// Type declaration for the bcrypt-pbkdf package (the KDF of OpenSSH's encrypted key files).
declare module 'bcrypt-pbkdf' {
  const bcryptPbkdf: {
    pbkdf(pass: Uint8Array, passLength: number, salt: Uint8Array, saltLength: number, key: Uint8Array, keyLength: number, rounds: number): number;
  };
  export default bcryptPbkdf;
}
