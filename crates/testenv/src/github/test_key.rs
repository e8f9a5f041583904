//! TEST-ONLY KEY MATERIAL. A throw-away RSA key pair for the GitHub App tests ONLY (generated with
//! `openssl genrsa -traditional 2048`). It signs JWTs for the local mock GitHub server ([`super::GitHubMock`]) and is
//! trusted by nothing else: it is public, in this repository, and must never be used for a real GitHub App.

/// TEST KEY, NOT A SECRET: the mock App's private key (PKCS#1 PEM, as GitHub hands out App keys).
pub const TEST_APP_PRIVATE_KEY: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEAzx6ou0HN/CAZoWjeZYCnKLX/qUh46swwWiTdkWHQWIZAivMb
8X13yn/5AsbUiBmwJDexIrX6PljmY/2//YXndYHsVBGAurDez7kMLkhdk7/PXWGe
hLri9ZxVo2OrxiVAu2laBcil1cnIxZcV19WB2NMcBm9ueguDs9KAt5eCYxvMcHzI
ccfO0sV/XqASaN0ZHTWUiWwdhem8OHZtYwn62M0A/4gVhN2WEmYSK2wDG/yvTTvM
jkFEl9fcx3Us0Owoa8Ct0tx/jFkYGe1JKcjtQOydd5qgjxfw7cr3LU8sBhl/5SRw
V1VtZkQSFVIfuqsJK7lZj/5EykXuI0FEFXaEIwIDAQABAoIBACBn/aJ+40nFg/0b
OWDMRls6Tqwf6LtkA1S3W+t5UG3pY4PaEc8xAGMwrrdegLZivoqMJCz4KBVFN5cB
ht6V6ucZ0u48ZtXPAq2hmGRNckbBxiIoOfMugoBHW6ba229/OKeaDjnFcR0IG1+/
Ce3hPBW+wi3HlZOG5a5nCziuffofgSimDPk8ZSJHx959LrxDNolT7aKUJ+Jms7oZ
s7V9qBaIGOn9guJpjE5PbKUYSNC2caJ7V0b1Z7IznRHI0AWAaBVTUMwbbTMX/OKp
fYe5K9KT2JkI404hPoO7x/zNmIiC0ptQXyDb3+u9M7EcHl1/ofR/jvRizDsrIhof
oB8gRDECgYEA9EHTPXhbx5YD3UZDMa48ehVyeMTrl4Z5A1rA22mLqUFdPP/R6zxL
PS5fPhYhN6xN12MPt9DgHJhBuXtdJnzz/QBe4qNF9GkgOBW3Zn/CMwh6F1edcQo2
k4VU7uXa0o5sXGrRVD7yXI6B2fgFvy6oH1M6K8iuFMHmC3opBWBYLg0CgYEA2RPE
0KWaNLVRlSf3Fh6xIPBusyXfyBfxMXsohJAnP4++EooP0hsffH7fKKeRpml1w0US
0lK1UyYzcOf70XFExnbU1VYhOKMq5QsXeODiPRkMbyJmCKWSaB50cQV0hA58eifp
sVxE4zcAGUx9EtzZ1VIK848+/uaWLe0byLM2Hu8CgYEAzpaWGdmgltB0+EQjNPPP
Rtq49RhowsIDvCiYEXvVmhQkziD45WMbp+V+vL5u3e2n8NJiSvApfUXx4PVMNe9d
VdFob3v1AOGhVI5ZjiHkmNFEolWCXkdrHZ6Z1W0nhQrc79WQsxaCWnJVtYunIKpP
nB8ChmG3iursrSxnYZq5OkkCgYEAjGeJ9H44SIFCnFv2KBt/69M3dq43mP9LZPrI
0T0/9Y+um+UqqHYcnnSdOHlx7pXlsoB51Qnj+D0MJqoVqXk+x7NSpA4KfMyk0PKk
ou2px2TtMvCn2E3nbWrNW9DwdP29q3EnaS1J7UDE0pgzicDJMH3ZUYHEeDCC0H+9
acnoZocCgYEA4S5Lvl32/lObnbg54uVzMyYmJd6iP7RmGgnHKz7Ywu3y/8CeXApk
OvHSXInT/BfHbvlI7IlN4rIk7dcbIM6xhNI4Vy2/ndkHCwHsrv22r/+YcGw7GK8L
soIyhdMD+sxxvhzgFXSzW3InmX3l7VqZYnE3B0Mp1eHW94VSIMGrmXQ=
-----END RSA PRIVATE KEY-----
";

/// The public half, with which the mock verifies the JWTs.
pub const TEST_APP_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzx6ou0HN/CAZoWjeZYCn
KLX/qUh46swwWiTdkWHQWIZAivMb8X13yn/5AsbUiBmwJDexIrX6PljmY/2//YXn
dYHsVBGAurDez7kMLkhdk7/PXWGehLri9ZxVo2OrxiVAu2laBcil1cnIxZcV19WB
2NMcBm9ueguDs9KAt5eCYxvMcHzIccfO0sV/XqASaN0ZHTWUiWwdhem8OHZtYwn6
2M0A/4gVhN2WEmYSK2wDG/yvTTvMjkFEl9fcx3Us0Owoa8Ct0tx/jFkYGe1JKcjt
QOydd5qgjxfw7cr3LU8sBhl/5SRwV1VtZkQSFVIfuqsJK7lZj/5EykXuI0FEFXaE
IwIDAQAB
-----END PUBLIC KEY-----
";
